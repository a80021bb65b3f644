"""What the Zoom SDK needs from a headless Linux host, set up by the project.

Theory of operation
-------------------
Two things, both checked on this appliance's machines:

1. **A home of its own per worker.** The SDK keeps state (sqlcipher databases, logs,
   ``~/.config/zoomus.conf``) under ``$HOME``, read when the binding is imported, so
   two workers sharing a home would clash. :func:`prepare_sdk_home` lays out a
   worker's home: ``.zoomsdk/logs`` exists before the import (otherwise the SDK
   prints "failed to open file" for every log line), and ``.config/zoomus.conf``
   carries ``[General] system.audio.type=default`` from the first start, which makes
   the SDK use PulseAudio (the SDK writes that file itself too, but only once it has
   run).
2. **A PulseAudio server with a default sink and source.** The SDK's voice engine
   loads ``libpulse.so.0`` at run time and connects to ``$PULSE_SERVER``; with no
   server it falls back to ALSA, finds no sound card on a server, and computer audio
   (which raw audio needs) cannot start. One server serves every worker:
   :func:`start_pulseaudio` runs a private one in the foreground (so its owner, the
   supervisor, can stop it like any child) with a unix socket, anonymous access and
   two null devices, ``hmb_speaker`` and ``hmb_mic``; :func:`ensure_pulseaudio`
   reuses a reachable server or starts one, and says what to install when it cannot.
   Workers get ``PULSE_SERVER`` through :func:`worker_environment`.

Debian packages: ``pulseaudio`` (server, brings ``libpulse0``) and, for the SDK's own
libraries, those in :data:`REQUIRED_DEBIAN_PACKAGES`.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

# System libraries the SDK wheel does not bundle (from ldd of its .so files), plus the
# audio stack. Names are Debian 12's; Debian 13 renames a few with a t64 suffix.
REQUIRED_DEBIAN_PACKAGES = (
    "libglib2.0-0",
    "libx11-6",
    "libxcb1",
    "libgl1",
    "libgnutls30",
    "libsystemd0",
    "libexpat1",
    "libasound2",
    "pulseaudio",
)

ZOOMUS_CONF_SETTINGS = {"system.audio.type": "default"}
SINK_NAME = "hmb_speaker"
SOURCE_NAME = "hmb_mic"
SOCKET_NAME = "native"


class HostSetupError(RuntimeError):
    """The host lacks something the SDK needs; the message says what to install."""


def prepare_sdk_home(home: Path) -> Path:
    """Create a worker's SDK home (idempotent) and return it."""
    (home / ".zoomsdk" / "logs").mkdir(parents=True, exist_ok=True)
    (home / ".config").mkdir(parents=True, exist_ok=True)
    write_zoomus_conf(home / ".config" / "zoomus.conf")
    return home


def write_zoomus_conf(path: Path, settings: dict[str, str] | None = None) -> None:
    """Make ``path``'s ``[General]`` section carry ``settings``, keeping other keys.

    The SDK rewrites this file with keys of its own (device ID, language), so it is
    merged rather than replaced.

    Limitation: an existing ``system.audio.type`` is overwritten, so a HOME shared
    with a desktop Zoom client would change that client's audio backend too; give
    each worker a home of its own.
    """
    wanted = dict(ZOOMUS_CONF_SETTINGS if settings is None else settings)
    lines = path.read_text().splitlines() if path.exists() else []
    out: list[str] = []
    section: str | None = None
    seen_general = False

    def flush_general() -> None:
        out.extend(f"{key}={value}" for key, value in wanted.items())
        wanted.clear()

    for line in lines:
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            if section == "General":
                flush_general()
            section = stripped[1:-1]
            seen_general = seen_general or section == "General"
            out.append(line)
            continue
        key = stripped.split("=", 1)[0].strip()
        if section == "General" and key in wanted:
            out.append(f"{key}={wanted.pop(key)}")
            continue
        out.append(line)
    if section == "General":
        flush_general()
    if not seen_general:
        out.extend(["[General]", *(f"{k}={v}" for k, v in wanted.items())])
    path.write_text("\n".join(out) + "\n")


@dataclass
class PulseAudio:
    """A reachable PulseAudio server; ``process`` is set when we started it."""

    socket_path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def server(self) -> str:
        return f"unix:{self.socket_path}"

    def stop(self, grace_s: float = 5.0) -> None:
        """Stop the server if we started it: SIGTERM, then SIGKILL after ``grace_s``."""
        proc = self.process
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            logger.warning("PulseAudio did not stop in %.0f s; killing it", grace_s)
            proc.kill()
            proc.wait()


def pulseaudio_binary() -> str | None:
    return shutil.which("pulseaudio")


def server_reachable(socket_path: Path) -> bool:
    """Whether something accepts connections on the PulseAudio unix socket."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(1.0)
            sock.connect(str(socket_path))
    except OSError:
        return False
    return True


def pulseaudio_command(binary: str, runtime_dir: Path) -> list[str]:
    """The command line of a private PulseAudio server, in the foreground."""
    sock = runtime_dir / SOCKET_NAME
    return [
        binary,
        "--daemonize=no",
        "--use-pid-file=no",
        "--exit-idle-time=-1",
        "--disallow-exit",
        "--log-target=stderr",
        "--log-level=warning",
        # -n skips the distribution's default.pa: no hardware probing, no D-Bus.
        "-n",
        f"--load=module-native-protocol-unix socket={sock} auth-anonymous=1",
        f"--load=module-null-sink sink_name={SINK_NAME}",
        f"--load=module-null-source source_name={SOURCE_NAME}",
    ]


def start_pulseaudio(runtime_dir: Path, *, timeout_s: float = 10.0) -> PulseAudio:
    """Start a private PulseAudio server and wait until its socket answers.

    The caller owns the returned server and must :meth:`PulseAudio.stop` it.
    """
    binary = pulseaudio_binary()
    if binary is None:
        raise HostSetupError(
            "the Zoom SDK needs a PulseAudio server to deliver raw audio, and "
            "'pulseaudio' is not installed: apt-get install pulseaudio"
        )
    runtime_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    sock = runtime_dir / SOCKET_NAME
    sock.unlink(missing_ok=True)
    # PulseAudio keeps a cookie and state under HOME/XDG dirs: keep them private.
    env = {
        **os.environ,
        "HOME": str(runtime_dir),
        "XDG_RUNTIME_DIR": str(runtime_dir),
        "XDG_CONFIG_HOME": str(runtime_dir / "config"),
    }
    env.pop("PULSE_SERVER", None)
    proc = subprocess.Popen(
        pulseaudio_command(binary, runtime_dir),
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise HostSetupError(f"PulseAudio exited at start: {err.strip()[-500:]}")
        if server_reachable(sock):
            # Nobody reads its stderr from here on; a full pipe would block it.
            if proc.stderr is not None:
                proc.stderr.close()
            logger.info("PulseAudio started (pid %d) on %s", proc.pid, sock)
            return PulseAudio(sock, proc)
        time.sleep(0.05)
    PulseAudio(sock, proc).stop()
    raise HostSetupError(f"PulseAudio did not open {sock} within {timeout_s:g} s")


def ensure_pulseaudio(runtime_dir: Path) -> PulseAudio:
    """A reachable PulseAudio: ``$PULSE_SERVER``'s, one already in ``runtime_dir``,
    or a new one started there (then owned by the caller)."""
    configured = os.environ.get("PULSE_SERVER", "")
    if configured.startswith("unix:"):
        path = Path(configured.removeprefix("unix:"))
        if server_reachable(path):
            return PulseAudio(path)
        logger.warning("PULSE_SERVER=%s does not answer; starting our own", configured)
    existing = runtime_dir / SOCKET_NAME
    if server_reachable(existing):
        return PulseAudio(existing)
    return start_pulseaudio(runtime_dir)


def pulse_server_available(env: dict[str, str] | None = None) -> bool:
    """Whether the SDK would find a PulseAudio server with this environment.

    A unix ``PULSE_SERVER`` (or the per-user default socket) is probed; any other
    ``PULSE_SERVER`` form (TCP) is taken on trust.
    """
    env = dict(os.environ if env is None else env)
    configured = env.get("PULSE_SERVER", "")
    if configured:
        if not configured.startswith("unix:"):
            return True
        return server_reachable(Path(configured.removeprefix("unix:")))
    runtime = env.get("XDG_RUNTIME_DIR")
    return bool(runtime) and server_reachable(Path(runtime) / "pulse" / SOCKET_NAME)


def worker_environment(home: Path, pulse: PulseAudio | None) -> dict[str, str]:
    """Environment variables a zoom worker needs on top of the supervisor's."""
    env = {"HOME": str(home)}
    if pulse is not None:
        env["PULSE_SERVER"] = pulse.server
    return env


def check_host() -> list[str]:
    """What is missing on this host for the zoom driver, as sentences; empty if fine."""
    problems = []
    if pulseaudio_binary() is None and not pulse_server_available():
        problems.append(
            "no PulseAudio: without it the SDK has no audio device and raw audio "
            "stays silent (apt-get install pulseaudio)"
        )
    return problems
