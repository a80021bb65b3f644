"""Worker deaths, DELETE and shutdown, through a real appliance and real clients."""

from __future__ import annotations

import os
import signal
import time

from tests.conftest import json_messages, pid_alive
from tests.test_audio_stream import Recorder

FIRST, SECOND = "111111111", "222222222"


def frames_received(appliance, meeting_id: str) -> int:
    return appliance.meeting(meeting_id)["stats"]["frames_received"]


def children_of(pid: int) -> list[int]:
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                children.append(int(entry))
    return children


def test_kill_9_of_a_worker_fails_only_its_meeting(appliance):
    for meeting_id in (FIRST, SECOND):
        appliance.post_meeting(meeting_id)
    first = appliance.wait_status(FIRST, "MEETING_STATUS_INMEETING")
    appliance.wait_status(SECOND, "MEETING_STATUS_INMEETING")
    victim = Recorder(f"{appliance.ws_url}/ws/audio/{FIRST}?type=mixed")
    bystander = Recorder(f"{appliance.ws_url}/ws/audio/{SECOND}?type=mixed")
    time.sleep(0.3)

    os.kill(first["worker_pid"], signal.SIGKILL)

    victim.join(timeout=10)
    detail = appliance.wait_status(FIRST, "MEETING_STATUS_FAILED")
    assert detail["error"]["code"] == "WORKER_DIED"
    assert "SIGKILL" in detail["error"]["message"]
    last = json_messages(victim.texts)[-1]
    assert last["type"] == "error"
    assert last["code"] == "WORKER_DIED"
    assert victim.close_code == 1011

    # The other meeting goes on, and its client still gets audio.
    before = frames_received(appliance, SECOND)
    received = len(bystander.streams[(0, 0)])
    time.sleep(0.5)
    assert frames_received(appliance, SECOND) > before
    assert len(bystander.streams[(0, 0)]) > received
    assert bystander.thread.is_alive()
    assert appliance.meeting(SECOND)["status"] == "MEETING_STATUS_INMEETING"


def test_delete_closes_streams_and_ends_the_worker(appliance):
    appliance.post_meeting(FIRST)
    detail = appliance.wait_status(FIRST, "MEETING_STATUS_INMEETING")
    client = Recorder(f"{appliance.ws_url}/ws/audio/{FIRST}")

    response = appliance.http.delete(f"/api/meetings/{FIRST}")

    assert response.status_code == 200
    client.join(timeout=10)
    last = json_messages(client.texts)[-1]
    assert (last["type"], last["code"]) == ("error", "MEETING_ENDED")
    assert client.close_code == 1000
    assert not pid_alive(detail["worker_pid"])


def test_sigterm_leaves_every_meeting_and_exits_cleanly(appliance):
    for meeting_id in (FIRST, SECOND):
        appliance.post_meeting(meeting_id)
    workers = [
        appliance.wait_status(m, "MEETING_STATUS_INMEETING")["worker_pid"]
        for m in (FIRST, SECOND)
    ]
    clients = [Recorder(f"{appliance.ws_url}/ws/audio/{m}") for m in (FIRST, SECOND)]
    children = children_of(appliance.process.pid)
    # The meetings' workers, and the spare kept warm for the next meeting.
    assert set(workers) < set(children)

    returncode = appliance.stop(timeout=30)

    assert returncode == 0
    for client in clients:
        client.join(timeout=5)
        assert json_messages(client.texts)[-1]["code"] == "MEETING_ENDED"
    assert not any(pid_alive(pid) for pid in children)
    log = appliance.log()
    assert log.index("leaving every meeting") < log.index("stopped")
    assert "Traceback" not in log


def mapped_files(pid: int) -> set[str]:
    with open(f"/proc/{pid}/maps") as maps:
        return {line.split()[-1] for line in maps if "/" in line}


def test_only_a_worker_that_shares_a_screen_loads_numpy(appliance):
    # numpy costs a sim worker about 15 MB: sound is made without it, and only
    # pictures (and WAV files) load it.
    appliance.post_meeting(FIRST, scenario="four_speakers")
    appliance.post_meeting(SECOND, scenario="share_slides")
    talking = appliance.wait_status(FIRST, "MEETING_STATUS_INMEETING")["worker_pid"]
    sharing = appliance.wait_status(SECOND, "MEETING_STATUS_INMEETING")["worker_pid"]
    time.sleep(0.3)

    assert frames_received(appliance, FIRST) > 0
    assert not [path for path in mapped_files(talking) if "numpy" in path]
    assert [path for path in mapped_files(sharing) if "numpy" in path]
