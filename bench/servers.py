"""The servers under test: the appliance (sim driver) and the Go reference ``gofanout``.

Both listen on 127.0.0.1 only, on a free port, with a temp folder of their own, and are
started with ``PR_SET_PDEATHSIG`` so they die with the harness whatever happens to it.
Each is stopped by its own PID (SIGTERM, then SIGKILL after a grace period).
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench import procstat

LOOPBACK = "127.0.0.1"
FIRST_MEETING_ID = 1000000001  # the reference numbers its meetings from here
GOFANOUT_DEFAULT = "/tmp/gofanout"
ANCHORS_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "anchors"
INMEETING = "MEETING_STATUS_INMEETING"
FINAL = {"MEETING_STATUS_ENDED", "MEETING_STATUS_FAILED"}


def meeting_ids(count: int) -> list[str]:
    return [str(FIRST_MEETING_ID + i) for i in range(count)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """preexec_fn: SIGTERM this child when the harness dies (Linux prctl)."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def percentile(sorted_values, q: float):
    """Nearest-rank percentile of an already sorted sequence; ``None`` if empty."""
    n = len(sorted_values)
    if not n:
        return None
    rank = max(1, min(n, math.ceil(q / 100 * n - 1e-9)))
    return sorted_values[rank - 1]


def stamped_scenario(folder: Path) -> Path:
    """The built-in ``four_speakers`` scenario with ``stamp_capture = true``."""
    text = None
    with contextlib.suppress(Exception):
        from appliance.drivers.sim.scenario import BUILTIN_DIR

        text = (BUILTIN_DIR / "four_speakers.toml").read_text()
    if text is None or "\n[meeting]\n" not in text:
        text = FOUR_SPEAKERS_FALLBACK
    text = text.replace("\n[meeting]\n", "\n[meeting]\nstamp_capture = true\n", 1)
    path = folder / "bench_four_speakers.toml"
    path.write_text(text)
    return path


FOUR_SPEAKERS_FALLBACK = (
    "".join(
        f"""
[[participant]]
user_id = {16778240 + 1024 * i}
name = "Speaker {i + 1}"
audio = {{ tone_hz = {300 + 100 * i} }}
speaks = [[{2.0 * i}, {2.0 * i + 2.0}]]
"""
        for i in range(4)
    )
    + "\n[meeting]\nloop = true\nloop_s = 8.0\n"
)


def share_scenario(folder: Path, width: int, height: int, fps: float) -> Path:
    """One presenter sharing ``width`` x ``height`` I420 at ``fps`` from time 0."""
    path = folder / f"bench_share_{width}x{height}_{fps:g}.toml"
    path.write_text(
        f"""description = "bench: one {width}x{height} share at {fps:g} fps, forever"

[[participant]]
user_id = 16778240
name = "Presenter"
audio = {{ tone_hz = 440 }}
speaks = [[0.0, 1.0]]

[[share]]
user_id = 16778240
start = 0.0
width = {width}
height = {height}
fps = {fps:g}
pattern = "moving"

[meeting]
stamp_capture = true
"""
    )
    return path


class Server:
    """A server process under test."""

    name = "server"
    stamped = False

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None
        self.port = free_port()
        self.tmp = Path(tempfile.mkdtemp(prefix=f"bench-{self.name}-"))
        self.log_path = self.tmp / "server.log"
        self.http = httpx.Client(
            base_url=f"http://{LOOPBACK}:{self.port}", timeout=30, trust_env=False
        )

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def ws_base(self) -> str:
        return f"ws://{LOOPBACK}:{self.port}"

    def _spawn(self, command: list[str], env: dict[str, str] | None = None) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=env,
                cwd=self.tmp,
                preexec_fn=_die_with_parent,
            )

    def _wait_ready(self, path: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited: see {self.log_path}")
            with contextlib.suppress(httpx.HTTPError):
                if self.http.get(path, timeout=2).status_code == 200:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} not ready within {timeout} s: {self.log_path}")

    def worker_pids(self) -> list[int]:
        return []

    def dropped_frames(self) -> int | None:
        """Frames the server dropped so far (its own count), if it says."""
        return None

    def stop(self, grace: float = 30) -> int | None:
        self.http.close()
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.process.returncode

    def cleanup(self, keep: bool = False) -> None:
        if not keep:
            shutil.rmtree(self.tmp, ignore_errors=True)


class Appliance(Server):
    """``headless-meeting-bot serve`` on the sim driver."""

    name = "appliance"
    stamped = True

    def __init__(
        self, window_ms: float, extra_env: dict[str, str] | None = None
    ) -> None:
        super().__init__()
        self.window_ms = window_ms
        self.extra_env = extra_env or {}
        self.meeting_ids: list[str] = []

    def start(self, max_meetings: int = 100) -> None:
        env = dict(os.environ)
        env.update(
            {
                "HTTP_ADDR": f"{LOOPBACK}:{self.port}",
                "HMB_DRIVER": "sim",
                "HMB_DATA_DIR": str(self.tmp / "data"),
                "HMB_WS_WINDOW_MS": f"{self.window_ms:g}",
                "HMB_MAX_MEETINGS": str(max(100, max_meetings)),
                "LOG_LEVEL": env.get("BENCH_LOG_LEVEL", "info"),
            }
        )
        env.update(self.extra_env)
        script = Path(sys.executable).with_name("headless-meeting-bot")
        command = (
            [str(script)] if script.exists() else [sys.executable, "-m", "appliance"]
        )
        self._spawn([*command, "serve"], env)
        self._wait_ready("/health")

    def open_meetings(
        self, ids: list[str], scenario: Path, timeout: float = 60, interval: float = 0.0
    ) -> dict:
        """POST each meeting and wait for INMEETING before the next one.

        Returns POST-to-INMEETING times: as the client saw them (POST sent to the
        first GET that shows INMEETING, polled every 5 ms) and as the appliance
        measured them (``stats.join_ms``).
        """
        seen_ms, join_ms = [], []
        for n, meeting_id in enumerate(ids):
            if n and interval > 0:
                time.sleep(interval)
            began = time.monotonic()
            response = self.http.post(
                "/api/meetings",
                json={
                    "meeting_id": meeting_id,
                    "display_name": "bench",
                    "scenario": str(scenario),
                },
            )
            if response.status_code != 202:
                raise RuntimeError(
                    f"POST {meeting_id}: {response.status_code} {response.text}"
                )
            detail = self.wait_status(meeting_id, began + timeout)
            seen_ms.append(1000 * (time.monotonic() - began))
            if detail["stats"].get("join_ms") is not None:
                join_ms.append(detail["stats"]["join_ms"])
            self.meeting_ids.append(meeting_id)
        return {"client_ms": seen_ms, "server_ms": join_ms}

    def wait_status(self, meeting_id: str, deadline: float) -> dict:
        while True:
            detail = self.http.get(f"/api/meetings/{meeting_id}").json()
            status = detail.get("status")
            if status == INMEETING:
                return detail
            if status in FINAL:
                raise RuntimeError(f"meeting {meeting_id} ended: {detail.get('error')}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"meeting {meeting_id} stuck in {status}")
            time.sleep(0.005)

    def meeting_stats(self) -> list[dict]:
        out = []
        for meeting_id in self.meeting_ids:
            with contextlib.suppress(httpx.HTTPError, ValueError):
                out.append(self.http.get(f"/api/meetings/{meeting_id}").json()["stats"])
        return out

    def dropped_frames(self) -> int | None:
        stats = self.meeting_stats()
        return sum(s.get("frames_dropped", 0) for s in stats) if stats else None

    def worker_dropped_frames(self) -> int:
        return sum(s.get("worker_dropped_frames", 0) for s in self.meeting_stats())

    def worker_pids(self) -> list[int]:
        """Every child of the supervisor: meetings' workers and spare workers."""
        return procstat.children(self.pid)

    def meeting_worker_pids(self) -> list[int]:
        """The workers that are in a meeting (``worker_pid`` of GET)."""
        pids = []
        for meeting_id in self.meeting_ids:
            with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
                pid = self.http.get(f"/api/meetings/{meeting_id}").json()["worker_pid"]
                if pid:
                    pids.append(pid)
        return pids

    def leave_all(self) -> None:
        for meeting_id in list(self.meeting_ids):
            with contextlib.suppress(httpx.HTTPError):
                self.http.delete(f"/api/meetings/{meeting_id}")
            self.meeting_ids.remove(meeting_id)


class GoFanout(Server):
    """The Go reference: fan-out only, meetings 1000000001..., no REST, no stamps."""

    name = "gofanout"
    stamped = False

    def __init__(
        self, binary: str, meetings: int, window_ms: float, max_run_s: float
    ) -> None:
        super().__init__()
        self.binary = binary
        self.meetings = meetings
        self.window_ms = window_ms
        self.max_run_s = max_run_s

    def start(self) -> None:
        self._spawn(
            [
                self.binary,
                "-addr",
                f"{LOOPBACK}:{self.port}",
                "-meetings",
                str(self.meetings),
                "-speakers",
                "4",
                "-window",
                str(int(self.window_ms)),
                "-exit-after",
                f"{int(self.max_run_s)}s",
            ]
        )
        self._wait_ready("/stats")

    def stats(self) -> dict | None:
        with contextlib.suppress(httpx.HTTPError, ValueError):
            return self.http.get("/stats").json()
        return None

    def dropped_frames(self) -> int | None:
        stats = self.stats()
        return None if stats is None else stats.get("frames_dropped")


def ensure_gofanout(path: str) -> str | None:
    """The reference binary, built with the anchor's build.sh if it is missing."""
    if os.access(path, os.X_OK):
        return path
    build = ANCHORS_DIR / "gofanout" / "build.sh"
    if not build.exists():
        return None
    print(f"bench: building the Go reference with {build} ...", flush=True)
    result = subprocess.run(["sh", str(build), path], timeout=900)
    return path if result.returncode == 0 and os.access(path, os.X_OK) else None


def summary_ms(values: list[float]) -> dict | None:
    if not values:
        return None
    ordered = sorted(values)
    return {
        "n": len(ordered),
        "p50": round(percentile(ordered, 50), 1),
        "p99": round(percentile(ordered, 99), 1),
        "max": round(ordered[-1], 1),
        "mean": round(statistics.fmean(ordered), 1),
    }
