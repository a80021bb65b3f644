"""The appliance's settings, all from the environment (see the README's table)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from appliance.drivers import DRIVER_NAMES
from appliance.logs import parse_level


class ConfigError(ValueError):
    """An environment variable has a value the appliance cannot use."""


def _number(env: dict[str, str], name: str, default: float, low: float, high: float):
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low:g} and {high:g}, got {raw}")
    return value


def _names(raw: str | None) -> tuple[str, ...]:
    """A comma-separated list, such as ``HMB_PLUGINS=recorder,share_capture``."""
    return tuple(n.strip() for n in (raw or "").split(",") if n.strip())


def parse_addr(addr: str) -> tuple[str, int]:
    """``HTTP_ADDR`` as Go writes it: ``:8080``, ``127.0.0.1:8080``, ``[::1]:8080``."""
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"HTTP_ADDR must be host:port or :port, got {addr!r}")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


def _default_data_dir(env: dict[str, str]) -> Path:
    # systemd's StateDirectory= sets STATE_DIRECTORY.
    if env.get("STATE_DIRECTORY"):
        return Path(env["STATE_DIRECTORY"].split(":")[0])
    base = env.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return Path(base) / "headless-meeting-bot"


@dataclass(frozen=True)
class Settings:
    http_host: str = "0.0.0.0"
    http_port: int = 8080
    log_level: int = 20
    driver: str = "sim"
    data_dir: Path = Path("data")
    ws_window: float = 0.1
    ws_heartbeat_interval: float = 10.0
    ws_default_queue_size: int = 1000
    leave_timeout: float = 20.0
    max_meetings: int = 100
    spare_workers: int = 1
    # Plugins: which are enabled for every meeting ("all" for all), the raw
    # HMB_PLUGIN_<NAME>_<KEY> variables (resolved once the plugins' names are known),
    # each plugin's frame budget per meeting, and how long shutdown waits for them.
    plugins: tuple[str, ...] = ()
    plugin_env: tuple[tuple[str, str], ...] = ()
    plugin_audio_queue: int = 3000
    plugin_share_queue: int = 8
    plugin_drain_timeout: float = 5.0

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        host, port = parse_addr(env.get("HTTP_ADDR") or ":8080")
        driver = env.get("HMB_DRIVER") or "sim"
        if driver not in DRIVER_NAMES:
            raise ConfigError(
                f"HMB_DRIVER must be one of {DRIVER_NAMES}, got {driver!r}"
            )
        return cls(
            http_host=host,
            http_port=port,
            log_level=parse_level(env.get("LOG_LEVEL")),
            driver=driver,
            data_dir=Path(env.get("HMB_DATA_DIR") or _default_data_dir(env)),
            ws_window=_number(env, "HMB_WS_WINDOW_MS", 100, 0, 10_000) / 1000,
            ws_heartbeat_interval=_number(env, "HMB_WS_HEARTBEAT_S", 10, 0.1, 3600),
            ws_default_queue_size=int(
                _number(env, "HMB_WS_QUEUE_SIZE", 1000, 1, 1_000_000)
            ),
            leave_timeout=_number(env, "HMB_LEAVE_TIMEOUT_S", 20, 0.1, 600),
            max_meetings=int(_number(env, "HMB_MAX_MEETINGS", 100, 1, 10_000)),
            spare_workers=int(_number(env, "HMB_SPARE_WORKERS", 1, 0, 16)),
            plugins=_names(env.get("HMB_PLUGINS")),
            plugin_env=tuple(
                sorted((k, v) for k, v in env.items() if k.startswith("HMB_PLUGIN_"))
            ),
            plugin_audio_queue=int(
                _number(env, "HMB_PLUGINS_AUDIO_QUEUE", 3000, 1, 1_000_000)
            ),
            plugin_share_queue=int(_number(env, "HMB_PLUGINS_SHARE_QUEUE", 8, 1, 1000)),
            plugin_drain_timeout=_number(env, "HMB_PLUGINS_DRAIN_TIMEOUT_S", 5, 0, 600),
        )
