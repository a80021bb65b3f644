"""Fixtures: a real appliance process on loopback, and clients for it."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

READY = re.compile(r"serving address=http://([\d.]+):(\d+)")

# Tests of the real Zoom SDK: slow (authentication takes about 12 s to fail here),
# and only where the zoom extra is installed.
REAL_ZOOM_SDK = [
    pytest.mark.zoom,
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("zoom_meeting_sdk") is None,
        reason="the zoom extra (zoom_meeting_sdk) is not installed",
    ),
]


@dataclass
class Appliance:
    """One ``headless-meeting-bot serve`` process and an HTTP client for it."""

    process: subprocess.Popen
    base_url: str
    data_dir: Path
    log_path: Path
    http: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.base_url, timeout=30)

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http://", "ws://")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def post_meeting(self, meeting_id: str, **fields) -> httpx.Response:
        return self.http.post(
            "/api/meetings", json={"meeting_id": meeting_id, **fields}
        )

    def meeting(self, meeting_id: str) -> dict:
        response = self.http.get(f"/api/meetings/{meeting_id}")
        assert response.status_code == 200, response.text
        return response.json()

    def wait_status(self, meeting_id: str, *statuses: str, timeout: float = 20) -> dict:
        """Poll until the meeting has one of ``statuses``; return its detail."""
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            detail = self.meeting(meeting_id)
            if not seen or seen[-1] != detail["status"]:
                seen.append(detail["status"])
            if detail["status"] in statuses:
                detail["seen_statuses"] = seen
                return detail
            time.sleep(0.02)
        raise AssertionError(f"{meeting_id} never reached {statuses}; saw {seen}")

    def stop(self, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise
        self.http.close()
        return self.process.returncode


def spawn_serve(env: dict[str, str], log_path: Path) -> subprocess.Popen:
    """``headless-meeting-bot serve`` with ``env``, its output going to ``log_path``."""
    with open(log_path, "wb") as log_file:
        return subprocess.Popen(
            [sys.executable, "-m", "appliance", "serve"],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=env,
        )


def start_appliance(tmp_path: Path, **env: str) -> Appliance:
    tmp_path.mkdir(parents=True, exist_ok=True)
    data_dir = tmp_path / "data"
    log_path = tmp_path / "appliance.log"
    full_env = dict(os.environ)
    full_env.update(
        {
            "HTTP_ADDR": "127.0.0.1:0",
            "HMB_DATA_DIR": str(data_dir),
            "HMB_DRIVER": "sim",
            "LOG_LEVEL": "info",
        }
    )
    full_env.update(env)
    process = spawn_serve(full_env, log_path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        match = READY.search(log_path.read_text(errors="replace"))
        if match:
            url = f"http://{match.group(1)}:{match.group(2)}"
            return Appliance(process, url, data_dir, log_path)
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    raise AssertionError("appliance did not start:\n" + log_path.read_text())


@pytest.fixture
def appliance_factory(tmp_path: Path) -> Iterator:
    started: list[Appliance] = []

    def factory(**env: str) -> Appliance:
        appliance = start_appliance(tmp_path / f"a{len(started)}", **env)
        started.append(appliance)
        return appliance

    yield factory
    for appliance in started:
        appliance.stop()


@pytest.fixture
def appliance(appliance_factory) -> Appliance:
    return appliance_factory()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is gone for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def json_messages(messages: list) -> list[dict]:
    return [json.loads(m) for m in messages if isinstance(m, str)]
