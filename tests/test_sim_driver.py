"""The simulated driver on its own thread: event order, pacing, endings and failures.

Timing assertions are deliberately loose: they check that frames follow the clock,
not how precisely this machine schedules threads.
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from appliance.drivers import load_driver
from appliance.drivers.base import AudioType, JoinRequest
from appliance.drivers.sim import driver as sim_driver
from appliance.drivers.sim import media
from appliance.drivers.sim.driver import FRAME_NS, SimDriver, Timeline
from appliance.drivers.sim.scenario import load_scenario
from appliance.errors import ErrorCode
from appliance.status import MeetingStatus

ALICE, BOB, CAROL = 16778240, 16779264, 16780288


@dataclass
class Recorder:
    """A DriverEvents sink that keeps everything, with the time it arrived."""

    events: list[tuple[Any, ...]] = field(default_factory=list)
    stall_at_frame: int | None = None
    stall_s: float = 0.0
    mixed_seen: int = 0

    def _add(self, *item: Any) -> None:
        self.events.append((time.monotonic_ns(), *item))

    def status(self, status, error_code=None, message=""):
        self._add("status", status, error_code, message)

    def participant_joined(self, user_id, name):
        self._add("joined", user_id, name)

    def participant_left(self, user_id, name):
        self._add("left", user_id, name)

    def audio(self, audio_type, user_id, capture_ns, pcm):
        self._add("audio", AudioType(audio_type), user_id, capture_ns, bytes(pcm))
        if audio_type == AudioType.MIXED:
            if self.mixed_seen == self.stall_at_frame:
                time.sleep(self.stall_s)  # a driver thread that was descheduled
            self.mixed_seen += 1

    def share_started(self, user_id):
        self._add("share_started", user_id)

    def share_stopped(self, user_id):
        self._add("share_stopped", user_id)

    def share_frame(self, user_id, capture_ns, width, height, i420):
        self._add("share_frame", user_id, capture_ns, width, height, bytes(i420))

    # Views for assertions.

    def statuses(self) -> list[MeetingStatus]:
        return [e[2] for e in self.events if e[1] == "status"]

    def final(self) -> tuple[MeetingStatus, ErrorCode | None, str]:
        last = self.events[-1]
        assert last[1] == "status"
        return last[2], last[3], last[4]

    def audio_of(self, kind: AudioType) -> list[tuple[Any, ...]]:
        return [e for e in self.events if e[1] == "audio" and e[2] == kind]

    def mixed(self) -> list[tuple[Any, ...]]:
        return self.audio_of(AudioType.MIXED)

    def status_time(self, status: MeetingStatus) -> int:
        return next(e[0] for e in self.events if e[1] == "status" and e[2] == status)

    def outline(self) -> list[tuple[Any, ...]]:
        """Non-audio events, each with the number of MIXED frames before it."""
        out = []
        frames = 0
        for e in self.events:
            if e[1] == "audio":
                frames += e[2] == AudioType.MIXED
            elif e[1] == "status":
                out.append((frames, e[2]))
            elif e[1] != "share_frame":
                out.append((frames, e[1], e[2]))
        return out


def start(scenario: str | None, recorder: Recorder | None = None):
    recorder = recorder or Recorder()
    drv = SimDriver()
    request = JoinRequest(meeting_id="123456789", scenario=scenario)
    thread = threading.Thread(target=drv.run, args=(request, recorder), daemon=True)
    thread.start()
    return drv, thread, recorder


def play(scenario: str, recorder: Recorder | None = None, timeout: float = 10):
    _, thread, recorder = start(scenario, recorder)
    thread.join(timeout)
    assert not thread.is_alive(), "run() did not return"
    return recorder


def write(tmp_path: Path, text: str, name: str = "s.toml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


TWO_SPEAKERS = """
[[participant]]
user_id = 16779264
name = "Bob"
audio = { tone_hz = 550 }
speaks = [[0.05, 0.2]]

[[participant]]
user_id = 16778240
name = "Alice"
audio = { tone_hz = 440 }
speaks = [[0.0, 0.1]]

[meeting]
connect_s = 0.01
ends_at = 0.3
"""


def tone(tone_hz: float, k: int) -> list[int]:
    return [
        round(0.25 * 32767 * math.sin(2 * math.pi * tone_hz * n / 32000))
        for n in range(k * 320, (k + 1) * 320)
    ]


def pcm(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<i2")


def by_capture(rec: Recorder) -> dict[int, list[tuple[Any, ...]]]:
    frames: dict[int, list[tuple[Any, ...]]] = {}
    for e in rec.events:
        if e[1] == "audio":
            frames.setdefault(e[4], []).append(e)
    return frames


def test_load_driver_makes_a_sim_driver():
    drv = load_driver("sim")
    assert isinstance(drv, SimDriver) and drv.name == "sim"


def test_meeting_that_the_host_ends(tmp_path):
    rec = play(write(tmp_path, TWO_SPEAKERS))

    assert rec.outline() == [
        (0, MeetingStatus.CONNECTING),
        (0, MeetingStatus.INMEETING),
        (0, "joined", ALICE),
        (0, "joined", BOB),
        (30, MeetingStatus.ENDED),
    ]
    _status, code, message = rec.final()
    assert code is ErrorCode.MEETING_ENDED
    assert "EndMeetingReason_EndByHost" in message

    mixed = rec.mixed()
    assert len(mixed) == 30
    captures = [e[4] for e in mixed]
    assert all(b - a == FRAME_NS for a, b in itertools.pairwise(captures))
    # Frames are never early: each arrives at or after its capture time.
    assert all(e[0] >= e[4] for e in mixed)
    assert captures[0] >= rec.status_time(MeetingStatus.INMEETING)
    elapsed = rec.status_time(MeetingStatus.ENDED) - captures[0]
    assert 0.3e9 <= elapsed < 2.0e9

    frames = by_capture(rec)
    for k, capture in enumerate(captures):
        group = frames[capture]
        assert group[0][2] is AudioType.MIXED and group[0][3] == 0
        one_way = group[1:]
        expected_ids = [
            uid for uid, lo, hi in ((ALICE, 0, 10), (BOB, 5, 20)) if lo <= k < hi
        ]
        assert [e[3] for e in one_way] == expected_ids
        assert all(e[2] is AudioType.ONE_WAY for e in one_way)
        for e in one_way:
            assert pcm(e[5]).tolist() == tone(440 if e[3] == ALICE else 550, k)
        total = sum((pcm(e[5]).astype(np.int32) for e in one_way), np.zeros(320))
        assert pcm(group[0][5]).tolist() == np.clip(total, -32768, 32767).tolist()


def test_meeting_with_nobody_still_delivers_silence(tmp_path):
    rec = play(write(tmp_path, "[meeting]\nconnect_s = 0\nends_at = 0.1\n"))
    mixed = rec.mixed()
    assert len(mixed) == 10 and rec.audio_of(AudioType.ONE_WAY) == []
    assert all(e[5] == bytes(640) for e in mixed)


def test_waiting_for_host_and_waiting_room(tmp_path):
    text = """
[meeting]
connect_s = 0.02
waiting_for_host_s = 0.1
waiting_room_s = 0.15
ends_at = 0.05
"""
    rec = play(write(tmp_path, text))
    assert rec.statuses() == [
        MeetingStatus.CONNECTING,
        MeetingStatus.WAITINGFORHOST,
        MeetingStatus.IN_WAITING_ROOM,
        MeetingStatus.INMEETING,
        MeetingStatus.ENDED,
    ]
    host = rec.status_time(MeetingStatus.WAITINGFORHOST)
    room = rec.status_time(MeetingStatus.IN_WAITING_ROOM)
    meeting = rec.status_time(MeetingStatus.INMEETING)
    assert room - host >= 0.1e9 and meeting - room >= 0.15e9
    assert rec.status_time(MeetingStatus.WAITINGFORHOST) - rec.events[0][0] >= 0.02e9
    assert len(rec.mixed()) == 5


@pytest.mark.parametrize(
    ("scenario", "code", "sdk_name"),
    [
        ("auth_failed", ErrorCode.AUTH_FAILED, "AUTHRET_JWTTOKENWRONG"),
        ("wrong_passcode", ErrorCode.JOIN_MEETING_FAILED, "MEETING_FAIL_PASSWORD_ERR"),
        ("meeting_over", ErrorCode.JOIN_MEETING_FAILED, "MEETING_FAIL_MEETING_OVER"),
        ("sdk_init_failed", ErrorCode.SDK_INIT_FAILED, "SDKERR_UNINITIALIZE"),
        (
            "AUTHRET_CLIENT_INCOMPATIBLE",
            ErrorCode.SDK_INIT_FAILED,
            "AUTHRET_CLIENT_INCOMPATIBLE",
        ),
        (
            "MEETING_FAIL_MEETING_NOT_EXIST",
            ErrorCode.JOIN_MEETING_FAILED,
            "MEETING_FAIL_MEETING_NOT_EXIST",
        ),
    ],
)
def test_join_failures(tmp_path, scenario, code, sdk_name):
    if scenario not in ("auth_failed", "wrong_passcode", "meeting_over"):
        scenario = write(tmp_path, f'[meeting]\njoin_result = "{scenario}"\n')
    rec = play(scenario)
    assert rec.statuses() == [MeetingStatus.CONNECTING, MeetingStatus.FAILED]
    assert len(rec.events) == 2
    _status, got_code, message = rec.final()
    assert got_code is code and sdk_name in message
    assert rec.events[1][0] - rec.events[0][0] >= 0.01e9


def test_auth_failure_message():
    _, _, message = play("auth_failed").final()
    assert message == "SDK authentication failed: AUTHRET_JWTTOKENWRONG"


def test_end_reason_network_broken_fails(tmp_path):
    text = """
[meeting]
connect_s = 0
ends_at = 0.02
end_reason = "EndMeetingReason_NetworkBroken"
"""
    status, code, message = play(write(tmp_path, text)).final()
    assert status is MeetingStatus.FAILED and code is ErrorCode.JOIN_MEETING_FAILED
    assert "EndMeetingReason_NetworkBroken" in message


def test_request_leave_in_meeting(tmp_path):
    text = TWO_SPEAKERS.replace("ends_at = 0.3", "")
    drv, thread, rec = start(write(tmp_path, text))
    time.sleep(0.25)
    asked = time.monotonic_ns()
    drv.request_leave()
    drv.request_leave()  # idempotent
    thread.join(5)
    assert not thread.is_alive()

    assert rec.statuses()[-3:] == [
        MeetingStatus.INMEETING,
        MeetingStatus.DISCONNECTING,
        MeetingStatus.ENDED,
    ]
    _status, code, message = rec.final()
    assert code is ErrorCode.MEETING_ENDED and "EndMeetingReason_None" in message
    assert rec.events[-1][0] - asked < 0.5e9

    # Mixed frames track the time spent in the meeting.
    in_meeting_s = (asked - rec.status_time(MeetingStatus.INMEETING)) / 1e9
    count = len(rec.mixed())
    assert 0.5 * in_meeting_s * 100 <= count <= in_meeting_s * 100 + 10
    drv.request_leave()  # after run returned: no effect, no error


def test_request_leave_before_run():
    drv = SimDriver()
    drv.request_leave()
    rec = Recorder()
    began = time.monotonic()
    drv.run(JoinRequest(meeting_id="123456789", scenario="host_ends"), rec)
    assert time.monotonic() - began < 1.0
    assert rec.statuses() == [
        MeetingStatus.CONNECTING,
        MeetingStatus.DISCONNECTING,
        MeetingStatus.ENDED,
    ]
    assert rec.final()[1] is ErrorCode.MEETING_ENDED


def test_request_leave_in_waiting_room_is_prompt():
    drv, thread, rec = start("waiting_room")
    deadline = time.monotonic() + 5
    while MeetingStatus.IN_WAITING_ROOM not in rec.statuses():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    asked = time.monotonic_ns()
    drv.request_leave()
    thread.join(5)
    assert rec.events[-1][0] - asked < 0.5e9
    assert rec.statuses() == [
        MeetingStatus.CONNECTING,
        MeetingStatus.IN_WAITING_ROOM,
        MeetingStatus.DISCONNECTING,
        MeetingStatus.ENDED,
    ]


SHARE = """
[[participant]]
user_id = 16778240
name = "Alice"
audio = { noise_seed = 3 }
speaks = [[0.0, 0.4]]

[[share]]
user_id = 16778240
start = 0.1
stop = 0.3
width = 64
height = 32
fps = 50
with_audio = true
pattern = "slides"
slide_s = 0.1

[meeting]
connect_s = 0
ends_at = 0.4
"""


def test_share_events_audio_and_video(tmp_path):
    rec = play(write(tmp_path, SHARE))
    assert rec.outline() == [
        (0, MeetingStatus.CONNECTING),
        (0, MeetingStatus.INMEETING),
        (0, "joined", ALICE),
        (10, "share_started", ALICE),
        (30, "share_stopped", ALICE),
        (40, MeetingStatus.ENDED),
    ]
    share_audio = rec.audio_of(AudioType.SHARE)
    assert len(share_audio) == 20 and {e[3] for e in share_audio} == {ALICE}
    captures = [e[4] for e in rec.mixed()]
    assert [e[4] for e in share_audio] == captures[10:30]

    video = [e for e in rec.events if e[1] == "share_frame"]
    assert len(video) == 10  # 0.2 s at 50 fps
    assert all(e[2] == ALICE and (e[4], e[5]) == (64, 32) for e in video)
    assert all(len(e[6]) == 64 * 32 * 3 // 2 for e in video)
    assert [e[3] for e in video] == captures[10:30:2]
    # slide_s 0.1 at 50 fps: five identical frames per slide.
    pictures = [e[6] for e in video]
    assert len(set(pictures[:5])) == 1 and pictures[4] != pictures[5]

    # One-way noise is the clip itself, byte for byte; mixed adds the share tone.
    clip = media.noise_clip(3, 0.25)
    frames = by_capture(rec)
    for k, capture in enumerate(captures):
        group = frames[capture]
        alice = pcm(group[1][5])
        assert alice.tolist() == clip[k * 320 : (k + 1) * 320].tolist()
        share = pcm(group[2][5]).astype(np.int32) if 10 <= k < 30 else 0
        assert pcm(group[0][5]).tolist() == (alice.astype(np.int32) + share).tolist()


@pytest.mark.parametrize("leave", [False, True])
def test_share_active_at_the_end_is_stopped_first(tmp_path, leave):
    text = SHARE.replace("stop = 0.3\n", "").replace("ends_at = 0.4", "ends_at = 0.3")
    if leave:
        drv, thread, rec = start(write(tmp_path, text.replace("ends_at = 0.3", "")))
        time.sleep(0.25)
        drv.request_leave()
        thread.join(5)
        tail = ["share_stopped", MeetingStatus.DISCONNECTING, MeetingStatus.ENDED]
    else:
        rec = play(write(tmp_path, text))
        tail = ["share_stopped", MeetingStatus.ENDED]
    kinds = [e[1] if e[1] != "status" else e[2] for e in rec.events[-len(tail) :]]
    assert kinds == tail


def test_loop_repeats_joins_and_leaves(tmp_path):
    text = """
[[participant]]
user_id = 16778240
name = "Alice"

[[participant]]
user_id = 16779264
name = "Bob"
joins_at = 0.03
leaves_at = 0.06

[meeting]
connect_s = 0
loop = true
loop_s = 0.1
ends_at = 0.25
"""
    rec = play(write(tmp_path, text))
    assert rec.outline() == [
        (0, MeetingStatus.CONNECTING),
        (0, MeetingStatus.INMEETING),
        (0, "joined", ALICE),
        (3, "joined", BOB),
        (6, "left", BOB),
        (13, "joined", BOB),
        (16, "left", BOB),
        (23, "joined", BOB),
        (25, MeetingStatus.ENDED),
    ]


def test_loop_repeats_speech_but_not_the_signal(tmp_path):
    text = """
[[participant]]
user_id = 16778240
audio = { tone_hz = 1000 }
speaks = [[0.0, 0.05]]

[meeting]
connect_s = 0
loop = true
loop_s = 0.1
ends_at = 0.2
"""
    rec = play(write(tmp_path, text))
    frames = by_capture(rec)
    captures = [e[4] for e in rec.mixed()]
    speaking = [k for k, c in enumerate(captures) if len(frames[c]) > 1]
    assert speaking == [0, 1, 2, 3, 4, 10, 11, 12, 13, 14]
    # The tone keeps running on meeting time across the loop.
    assert pcm(frames[captures[11]][1][5]).tolist() == tone(1000, 11)


def test_stamp_capture(tmp_path):
    text = TWO_SPEAKERS.replace("ends_at = 0.3", "ends_at = 0.1\nstamp_capture = true")
    rec = play(write(tmp_path, text))
    frames = by_capture(rec)
    for capture, group in frames.items():
        mixed = group[0][5]
        assert int.from_bytes(mixed[:8], "little") == capture
        assert (
            pcm(mixed)[4:].tolist()
            == np.clip(
                sum(pcm(e[5]).astype(np.int32) for e in group[1:]), -32768, 32767
            )[4:].tolist()
        )
        assert all(e[5][:8] != capture.to_bytes(8, "little") for e in group[1:])


def test_late_wakeup_catches_up_without_drift(tmp_path, caplog):
    text = "[meeting]\nconnect_s = 0\nends_at = 0.4\n"
    stalled = Recorder(stall_at_frame=5, stall_s=0.15)
    with caplog.at_level(logging.WARNING, logger=sim_driver.__name__):
        rec = play(write(tmp_path, text), stalled)
    mixed = rec.mixed()
    assert len(mixed) == 40
    captures = [e[4] for e in mixed]
    assert all(b - a == FRAME_NS for a, b in itertools.pairwise(captures))
    # Frames due during the stall come out in a burst right after it...
    burst = [e[0] for e in mixed[6:18]]
    assert burst[-1] - burst[0] < 0.05e9
    # ...and the meeting still ends on time, not 150 ms late.
    elapsed = rec.status_time(MeetingStatus.ENDED) - captures[0]
    assert elapsed < 0.4e9 + 0.1e9
    assert caplog.text.count("late; catching up") == 1


def test_missing_scenario_fails_with_internal_error(tmp_path, caplog):
    with caplog.at_level(logging.ERROR, logger=sim_driver.__name__):
        rec = play(str(tmp_path / "gone.toml"))
    assert rec.statuses() == [MeetingStatus.CONNECTING, MeetingStatus.FAILED]
    _, code, message = rec.final()
    assert code is ErrorCode.INTERNAL_ERROR and "gone.toml" in message
    assert "simulated driver failed" in caplog.text


def test_exception_while_playing_is_contained(tmp_path, monkeypatch, caplog):
    def broken(*args: Any) -> None:
        raise RuntimeError("renderer exploded")

    monkeypatch.setattr(sim_driver._Player, "emit", broken)
    with caplog.at_level(logging.ERROR, logger=sim_driver.__name__):
        rec = play(write(tmp_path, TWO_SPEAKERS))
    assert rec.statuses() == [
        MeetingStatus.CONNECTING,
        MeetingStatus.INMEETING,
        MeetingStatus.FAILED,
    ]
    _, code, message = rec.final()
    assert code is ErrorCode.INTERNAL_ERROR and "renderer exploded" in message
    assert "renderer exploded" in caplog.text


def test_join_is_quick():
    # POST-to-INMEETING must stay well under 300 ms; the default scenario's
    # precomputation happens while CONNECTING.
    drv, thread, rec = start(None)
    deadline = time.monotonic() + 5
    while MeetingStatus.INMEETING not in rec.statuses():
        assert time.monotonic() < deadline
        time.sleep(0.005)
    drv.request_leave()
    thread.join(5)
    joined = rec.status_time(MeetingStatus.INMEETING) - rec.events[0][0]
    assert joined < 0.25e9


def test_default_scenario_timeline_without_waiting():
    timeline = Timeline(load_scenario("default"))
    assert timeline.period == 1500
    alice, bob, carol, dave = range(4)

    def at(seconds: float):
        return timeline.state_at(round(seconds * 100))

    assert at(0).present == {alice, bob, carol} and at(0).audible == (alice,)
    assert dave in at(1.0).present and dave not in at(14.0).present
    assert at(5).audible == (bob,) and at(5).share == 0 and at(5).share_audible
    assert at(12).share is None and at(10.6).audible == (dave,)
    # The next round replays the first, on later frames.
    for seconds in (0, 1.0, 5, 12, 14.5):
        assert at(seconds + 15) == at(seconds) == at(seconds + 150)


def test_timeline_without_loop_keeps_its_last_state(tmp_path):
    text = """
[[participant]]
user_id = 16778240
speaks = [[0, 0.1]]
joins_at = 0.05
"""
    timeline = Timeline(load_scenario(write(tmp_path, text)))
    assert timeline.period is None
    assert timeline.state_at(0).present == frozenset()
    assert timeline.state_at(5).audible == (0,)
    assert timeline.state_at(10).audible == ()
    assert timeline.state_at(10**9).present == {0}
