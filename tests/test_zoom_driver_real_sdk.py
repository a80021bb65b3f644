"""The real ZoomDriver with the real SDK, on a machine with no route to Zoom.

Each run happens in a child process, as in production: the SDK is a process-wide
singleton that reads ``$HOME`` when imported and prints to fds 1 and 2. The child runs
the driver on a thread of its own with a recording events sink and prints what it
recorded as JSON on its last line. Nothing here joins a meeting: authentication fails
first, and that failure is what is checked.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REAL_ZOOM_SDK

pytestmark = REAL_ZOOM_SDK

SECRET = "not-a-real-secret-but-32-bytes-long!!"

CHILD = r"""
import json, sys, threading, time
from pathlib import Path

from appliance.drivers.base import JoinRequest
from appliance.drivers.zoom.auth import SDKCredentials
from appliance.drivers.zoom.driver import ZoomDriver
from appliance.drivers.zoom.host_setup import prepare_sdk_home

prepare_sdk_home(Path.home())
leave_after = float(sys.argv[1])
events = []

class Recorder:
    def status(self, status, error_code=None, message=""):
        events.append([str(status), error_code and error_code.name, message,
                       time.monotonic()])
    def participant_joined(self, user_id, name): events.append(["joined"])
    def participant_left(self, user_id, name): events.append(["left"])
    def audio(self, *args): events.append(["audio"])
    def share_started(self, user_id): events.append(["share_started"])
    def share_stopped(self, user_id): events.append(["share_stopped"])
    def share_frame(self, *args): events.append(["share_frame"])

driver = ZoomDriver(SDKCredentials("fake-sdk-key", sys.argv[2]))
start = time.monotonic()
thread = threading.Thread(
    target=driver.run,
    args=(JoinRequest("12345678901", password="pw-1234"), Recorder()),
    name="driver",
)
thread.start()
if leave_after >= 0:
    time.sleep(leave_after)
    driver.request_leave()
thread.join(90)
result = {
    "events": [e[:3] + ([e[3] - start] if len(e) > 3 else []) for e in events],
    "alive": thread.is_alive(),
    "elapsed": time.monotonic() - start,
    "threads": [t.name for t in threading.enumerate()],
}
print("RESULT " + json.dumps(result), flush=True)
"""


def spawn(home: Path, leave_after: float) -> subprocess.Popen[str]:
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HOME": str(home)}
    env.pop("PULSE_SERVER", None)
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(leave_after), SECRET],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen[str]) -> tuple[dict, str]:
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"the child did not exit: {err[-2000:]}")
    assert proc.returncode == 0, err[-2000:]
    line = next(x for x in out.splitlines()[::-1] if x.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT ")), out + err


def test_auth_fails_with_the_sdks_result_and_the_driver_thread_ends(
    tmp_path: Path,
) -> None:
    # Two workers at once, each with its own home, must not disturb each other.
    started = time.monotonic()
    procs = [spawn(tmp_path / f"home{i}", -1) for i in range(2)]
    results = [finish(p) for p in procs]
    wall = time.monotonic() - started

    for result, output in results:
        statuses = [e for e in result["events"] if e[0].startswith("MEETING_STATUS")]
        assert [s[0] for s in statuses] == [
            "MEETING_STATUS_CONNECTING",
            "MEETING_STATUS_FAILED",
        ]
        _, code, message, at = statuses[-1]
        assert code == "AUTH_FAILED"
        assert "AUTHRET_" in message or "no AuthResult" in message
        assert at < 60
        assert result["alive"] is False
        assert result["threads"] == ["MainThread"]
        # Neither the secret nor a JWT reaches the process's output.
        assert SECRET not in output
        assert "eyJ" not in output
    for i in range(2):
        assert (tmp_path / f"home{i}" / ".zoomsdk").is_dir()
    print(f"auth failure: {results[0][0]['events'][-1]} in {wall:.1f} s wall")


def test_leave_during_authentication_ends_the_run_promptly(tmp_path: Path) -> None:
    result, _ = finish(spawn(tmp_path / "home", 2.0))
    statuses = [e for e in result["events"] if e[0].startswith("MEETING_STATUS")]
    assert [s[0] for s in statuses] == [
        "MEETING_STATUS_CONNECTING",
        "MEETING_STATUS_ENDED",
    ]
    _, code, message, at = statuses[-1]
    assert code == "MEETING_ENDED"
    assert "on request" in message
    # Asked at 2 s; the loop checks the flag at least every 0.25 s.
    assert at < 5
    assert result["alive"] is False
