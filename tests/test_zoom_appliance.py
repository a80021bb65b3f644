"""The real Zoom SDK behind the REST API, up to the network boundary.

With no route to Zoom, SDKAuth fails after about 12 s with AUTHRET_UNKNOWN. These
tests check what a client sees of that through the appliance: the meeting fails with
AUTH_FAILED naming the SDK's result, the worker exits, two workers at once keep apart,
and no secret reaches a log. Nothing here joins a meeting.
"""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REAL_ZOOM_SDK, pid_alive

pytestmark = REAL_ZOOM_SDK

KEY = "hmb-test-key-1f0c"
SECRET = "hmb-test-secret-9d2e7b4c"
MEETINGS = ["81234567890", "81234567891"]


def test_auth_failure_through_rest_and_no_clash(appliance_factory):
    appliance = appliance_factory(
        HMB_DRIVER="zoom", ZOOM_SDK_KEY=KEY, ZOOM_SDK_SECRET=SECRET
    )

    for meeting_id in MEETINGS:
        response = appliance.post_meeting(meeting_id, password="987654")
        assert response.status_code == 202
    details = [
        appliance.wait_status(m, "MEETING_STATUS_FAILED", timeout=90) for m in MEETINGS
    ]

    for detail in details:
        assert detail["error"]["code"] == "AUTH_FAILED"
        assert "AUTHRET_" in detail["error"]["message"]
    # Each worker had a home of its own, where the SDK kept its state.
    homes = sorted(appliance.data_dir.glob("workers/*/home/.zoomsdk"))
    assert [h.parent.parent.name.split("-")[0] for h in homes] == MEETINGS
    for detail in details:
        pid = detail["worker_pid"]
        for _ in range(100):
            if not pid_alive(pid):
                break
            subprocess.run(["sleep", "0.1"], check=True)
        assert not pid_alive(pid)

    assert appliance.stop() == 0
    logs = appliance.log() + "".join(
        p.read_text(errors="replace")
        for p in appliance.data_dir.glob("workers/*/*.log")
    )
    for secret in (SECRET, "987654", "eyJ"):
        assert secret not in logs


def test_serve_refuses_the_zoom_driver_without_credentials(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "appliance", "serve"],
        env={"HMB_DRIVER": "zoom", "HMB_DATA_DIR": str(tmp_path), "PATH": "/usr/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 2
    assert "ZOOM_SDK_KEY" in result.stderr
