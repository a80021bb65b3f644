"""``headless-meeting-bot doctor``: what this host lacks for the appliance, and the fix.

Each check looks at one thing ``serve`` will need, with the same settings (the same
environment) ``serve`` would get, and says ``ok``, ``warn`` or ``fail`` on one line,
with what to do when it is not ok. The exit code is 0 when nothing fails.

Nothing here changes the host: the data directory is tested with a file that is
removed at once, the port with a bind that is closed at once, and the Zoom SDK is
loaded in a child process (``doctor --probe-sdk``) with a throwaway ``HOME``, because
loading it writes under ``$HOME`` and prints to the process's own stdout.
Credentials are reported as set or missing, never shown.

Limitation: doctor runs as whoever starts it, with that shell's limits; under systemd
the service runs as its own dynamic user with the unit's limits, which a check from
a root shell does not see.
"""

from __future__ import annotations

import contextlib
import errno
import importlib.metadata
import importlib.util
import json
import logging
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from appliance import __version__
from appliance.config import ConfigError, Settings

log = logging.getLogger(__name__)

OK, WARN, FAIL = "ok", "warn", "fail"
SDK_MODULE = "zoom_meeting_sdk"
SDK_DISTRIBUTION = "zoom-meeting-sdk"
PROBE_OK = "doctor-probe: ok"
PROBE_ERROR = "doctor-probe: error: "
PROBE_TIMEOUT_S = 120.0
LOW_DISK_BYTES = 1 << 30
WANTED_OPEN_FILES = 4096


@dataclass(frozen=True)
class Check:
    """One line of the report."""

    name: str
    status: str
    detail: str
    fix: str = ""

    def line(self) -> str:
        text = f"{self.status:<4}  {self.name}: {self.detail}"
        return f"{text}; fix: {self.fix}" if self.fix else text


def _self_command() -> list[str]:
    from appliance.supervisor.workers import self_command

    return self_command()


def check_program() -> Check:
    if getattr(sys, "frozen", False):
        where = f"one-file binary {sys.executable}"
    else:
        where = f"Python {sys.version.split()[0]} at {sys.executable}"
    return Check("program", OK, f"headless-meeting-bot {__version__}, {where}")


def check_driver(settings: Settings, *, probe: bool = True) -> Check:
    """The chosen driver, and whether the Zoom SDK binding is there (and loads)."""
    present = importlib.util.find_spec(SDK_MODULE) is not None
    version = ""
    if present:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            version = " " + importlib.metadata.version(SDK_DISTRIBUTION)
    sdk = f"Zoom SDK binding{version} present" if present else "no Zoom SDK binding"
    if settings.driver != "zoom":
        return Check("driver", OK, f"{settings.driver} ({sdk})")
    if not present:
        hint = (
            "build the binary with packaging/build.sh --zoom"
            if getattr(sys, "frozen", False)
            else "pip install 'headless-meeting-bot[zoom]'"
        )
        return Check("driver", FAIL, f"zoom, but {sdk}", hint)
    if not probe:
        return Check("driver", OK, f"zoom ({sdk}; not loaded: --quick)")
    error = run_sdk_probe()
    if error:
        return Check(
            "driver",
            FAIL,
            f"zoom ({sdk}) but it does not load: {error}",
            "install the SDK's system libraries: apt-get install "
            + " ".join(_debian_packages()),
        )
    return Check("driver", OK, f"zoom ({sdk}, loads)")


def _debian_packages() -> tuple[str, ...]:
    from appliance.drivers.zoom.host_setup import REQUIRED_DEBIAN_PACKAGES

    return REQUIRED_DEBIAN_PACKAGES


def run_sdk_probe() -> str:
    """Load the SDK in a child process; ``""`` if it loads, else why not."""
    with tempfile.TemporaryDirectory(prefix="hmb-doctor-") as home:
        env = dict(os.environ, HOME=home)
        try:
            done = subprocess.run(
                [*_self_command(), "doctor", "--probe-sdk"],
                env=env,
                cwd=home,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=PROBE_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            return f"loading it took more than {PROBE_TIMEOUT_S:g} s"
    output = (done.stdout + done.stderr).decode(errors="replace").splitlines()
    if done.returncode == 0 and PROBE_OK in output:
        return ""
    for line in output:
        if line.startswith(PROBE_ERROR):
            return line.removeprefix(PROBE_ERROR)
    tail = " | ".join(output[-3:]) or "no output"
    return f"the probe exited with code {done.returncode}: {tail}"


def probe_sdk() -> int:
    """The child side of :func:`run_sdk_probe`: import the binding and say so."""
    from appliance.drivers.zoom.driver import import_sdk
    from appliance.drivers.zoom.host_setup import prepare_sdk_home
    from appliance.errors import DriverUnavailable

    prepare_sdk_home(Path.home())
    try:
        import_sdk()
    except DriverUnavailable as exc:
        print(PROBE_ERROR + exc.message, file=sys.stderr, flush=True)
        return 1
    print(PROBE_OK, file=sys.stderr, flush=True)
    sys.stdout.flush()
    # The SDK's libraries have threads and destructors of their own; an exit that
    # runs them can hang, and nothing here needs cleaning up.
    os._exit(0)


def check_credentials(settings: Settings, env: Mapping[str, str]) -> Check:
    names = ("ZOOM_SDK_KEY", "ZOOM_SDK_SECRET")
    missing = [name for name in names if not env.get(name)]
    if settings.driver != "zoom":
        state = "not set" if missing == list(names) else "set"
        return Check("zoom credentials", OK, f"{state}; the sim driver needs none")
    if missing:
        return Check(
            "zoom credentials",
            FAIL,
            f"{' and '.join(missing)} not set",
            "put the Meeting SDK app's client ID and secret in the environment "
            "file (/etc/headless-meeting-bot/env) as ZOOM_SDK_KEY and ZOOM_SDK_SECRET",
        )
    return Check("zoom credentials", OK, "ZOOM_SDK_KEY and ZOOM_SDK_SECRET are set")


def check_pulseaudio(settings: Settings, env: Mapping[str, str]) -> Check:
    from appliance.drivers.zoom import host_setup

    binary = host_setup.pulseaudio_binary()
    if settings.driver != "zoom":
        found = f"pulseaudio at {binary}" if binary else "no pulseaudio"
        return Check("pulseaudio", OK, f"{found}; the sim driver needs none")
    problems = host_setup.check_host()
    if problems:
        return Check("pulseaudio", FAIL, problems[0], "apt-get install pulseaudio")
    runtime = env.get("RUNTIME_DIRECTORY", "").split(":")[0]
    if runtime and not os.access(runtime, os.W_OK | os.X_OK):
        return Check(
            "pulseaudio",
            FAIL,
            f"RUNTIME_DIRECTORY {runtime} is not writable; its socket goes there",
            "let systemd create it (RuntimeDirectory= in the unit)",
        )
    where = runtime or "a temporary folder"
    detail = f"{binary}; the appliance starts its own server in {where}"
    if env.get("PULSE_SERVER"):
        detail = f"PULSE_SERVER={env['PULSE_SERVER']} answers"
    return Check("pulseaudio", OK, detail)


def check_data_dir(settings: Settings) -> Check:
    """Writable (tried with a file), or creatable; and room for recordings."""
    path = settings.data_dir
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    fix = (
        "set HMB_DATA_DIR to a writable folder (under systemd, StateDirectory= "
        "provides one)"
    )
    if not existing.is_dir():
        return Check("data directory", FAIL, f"{existing} is not a folder", fix)
    if existing == path:
        try:
            with tempfile.TemporaryFile(dir=path):
                pass
        except OSError as exc:
            return Check(
                "data directory", FAIL, f"{path} is not writable: {exc.strerror}", fix
            )
        state = "is writable"
    elif os.access(existing, os.W_OK | os.X_OK):
        state = f"will be created (in {existing}, writable)"
    else:
        return Check(
            "data directory",
            FAIL,
            f"{path} cannot be created: {existing} is not writable",
            fix,
        )
    free = shutil.disk_usage(existing).free
    detail = f"{path} {state}, {free / (1 << 30):.1f} GiB free"
    if free < LOW_DISK_BYTES:
        return Check(
            "data directory",
            WARN,
            detail,
            "recordings and worker logs go here: free some space",
        )
    return Check("data directory", OK, detail)


def _appliance_at(host: str, port: int) -> str | None:
    """What answers ``/health`` on ``host:port``, if it is this appliance."""
    target = "127.0.0.1" if host in ("", "0.0.0.0") else host
    if ":" in target:
        target = f"[{target}]"
    if target == "[::]":
        target = "[::1]"
    try:
        with urllib.request.urlopen(
            f"http://{target}:{port}/health", timeout=2
        ) as response:
            health = json.loads(response.read())
    except (OSError, ValueError):
        return None
    if not isinstance(health, dict) or "driver" not in health:
        return None
    return f"headless-meeting-bot {health.get('version')} ({health['driver']})"


def check_port(settings: Settings) -> Check:
    """Bind the HTTP address the way ``serve`` will (``SO_REUSEADDR``), then close."""
    host, port = settings.http_host, settings.http_port
    where = f"{host}:{port}"
    if port == 0:
        return Check("http port", OK, f"{where}: any free port will be taken")
    try:
        infos = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        return Check(
            "http port", FAIL, f"{where}: {exc}", "fix the host part of HTTP_ADDR"
        )
    family, kind, proto, _, address = infos[0]
    try:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            running = _appliance_at(host, port)
            if running:
                return Check(
                    "http port",
                    WARN,
                    f"{where} is in use by a running {running}",
                    "nothing, if that is this service; stop it to free the port",
                )
            return Check(
                "http port",
                FAIL,
                f"{where} is in use by another program",
                f"find it with: ss -ltnp 'sport = :{port}'; or choose another "
                "HTTP_ADDR",
            )
        if exc.errno == errno.EACCES:
            return Check(
                "http port",
                FAIL,
                f"{where}: ports below 1024 need a privilege",
                "use a port from 1024 up, or give the service "
                "AmbientCapabilities=CAP_NET_BIND_SERVICE",
            )
        return Check(
            "http port",
            FAIL,
            f"{where}: {exc.strerror}",
            "use an address of this host in HTTP_ADDR",
        )
    return Check("http port", OK, f"{where} is free")


def check_open_files() -> Check:
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < WANTED_OPEN_FILES:
        return Check(
            "open files",
            WARN,
            f"limit {soft}; every WebSocket client and worker holds descriptors",
            f"raise it to {WANTED_OPEN_FILES} or more (LimitNOFILE= in the unit, "
            "which sets 65536; ulimit -n in a shell)",
        )
    limit = "unlimited" if soft == resource.RLIM_INFINITY else str(soft)
    return Check("open files", OK, f"limit {limit}")


def check_plugins(settings: Settings, plugin_path: list[Path]) -> Check:
    """Load the plugins as ``serve`` would, without starting them."""
    from appliance.plugins.manager import PluginManager

    missing = [str(p) for p in plugin_path if not p.exists()]
    # The manager logs each failure; the report line below says it once.
    previous = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        manager = PluginManager.load(settings)
    except ConfigError as exc:
        return Check(
            "plugins",
            FAIL,
            str(exc),
            "install the plugin (see HMB_PLUGIN_PATH) or take it out of HMB_PLUGINS",
        )
    finally:
        logging.disable(previous)
    loaded = [p for p in manager.plugins if p.error is None]
    failed = [p for p in manager.plugins if p.error is not None]
    names = ", ".join(p.name + (" (enabled)" if p.enabled else "") for p in loaded)
    detail = f"{len(loaded)} loaded: {names or 'none'}"
    if plugin_path:
        detail += f"; HMB_PLUGIN_PATH {':'.join(str(p) for p in plugin_path)}"
    if failed or missing:
        problems = [f"{p.name} failed: {p.error}" for p in failed]
        problems += [f"{path} does not exist" for path in missing]
        return Check(
            "plugins",
            WARN,
            f"{detail}; {'; '.join(problems)}",
            "reinstall the failing plugins, or remove them",
        )
    return Check("plugins", OK, detail)


def run_checks(
    env: Mapping[str, str] | None = None,
    *,
    probe: bool = True,
    plugin_path: list[Path] | None = None,
) -> list[Check]:
    """Every check, in the order an operator fixes things."""
    env = dict(os.environ if env is None else env)
    checks = [check_program()]
    try:
        settings = Settings.from_env(env)
    except ConfigError as exc:
        checks.append(
            Check("settings", FAIL, str(exc), "correct it in the environment file")
        )
        return checks
    if plugin_path is None:
        from appliance.cli import plugin_path as find_plugin_path

        plugin_path = find_plugin_path(env)
    steps: list[Callable[[], Check]] = [
        lambda: check_driver(settings, probe=probe),
        lambda: check_credentials(settings, env),
        lambda: check_pulseaudio(settings, env),
        lambda: check_data_dir(settings),
        lambda: check_port(settings),
        check_open_files,
        lambda: check_plugins(settings, plugin_path),
    ]
    for step in steps:
        checks.append(step())
    return checks


def report(checks: list[Check], out: TextIO) -> int:
    """Print ``checks``; the exit code (1 if any failed)."""
    for check in checks:
        print(check.line(), file=out)
    counts = {
        status: sum(c.status == status for c in checks) for status in (OK, WARN, FAIL)
    }
    warnings = "warning" if counts[WARN] == 1 else "warnings"
    failures = "failure" if counts[FAIL] == 1 else "failures"
    print(
        f"{counts[OK]} ok, {counts[WARN]} {warnings}, {counts[FAIL]} {failures}",
        file=out,
    )
    return 1 if counts[FAIL] else 0


def main(*, probe: bool = True, out: TextIO | None = None) -> int:
    """``headless-meeting-bot doctor``."""
    return report(run_checks(probe=probe), out or sys.stdout)
