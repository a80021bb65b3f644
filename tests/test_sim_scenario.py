"""Scenarios of the simulated driver: parsing, defaults, names and every refusal."""

from __future__ import annotations

import wave
from pathlib import Path

import pytest

from appliance.drivers.sim.scenario import (
    builtin_names,
    load_scenario,
    parse_scenario,
    to_frame,
)
from appliance.errors import ErrorCode, InvalidRequest

BUILTINS = {
    "default",
    "four_speakers",
    "waiting_room",
    "host_ends",
    "auth_failed",
    "wrong_passcode",
    "meeting_over",
    "share_slides",
}

ALICE = """
[[participant]]
user_id = 16778240
name = "Alice"
"""


def parse(text: str, base_dir: Path | None = None):
    return parse_scenario(text, base_dir or Path("/nonexistent"), "test.toml")


def write_wav(path: Path, rate: int = 16000, frames: int = 160) -> None:
    with wave.open(str(path), "wb") as clip:
        clip.setnchannels(1)
        clip.setsampwidth(2)
        clip.setframerate(rate)
        clip.writeframes(b"\x01\x00" * frames)


def test_builtins_all_load_and_are_listed():
    assert set(builtin_names()) == BUILTINS
    for name in BUILTINS:
        scenario = load_scenario(name)
        assert scenario.origin == name
        assert scenario.path is not None and scenario.path.name == f"{name}.toml"


def test_none_and_empty_mean_default():
    assert load_scenario(None).path == load_scenario("default").path
    assert load_scenario("").origin == "default"


def test_default_scenario_shape():
    s = load_scenario("default")
    assert len(s.participants) == 4
    assert len({p.audio.tone_hz for p in s.participants}) == 4
    assert [p.user_id for p in s.participants] == [
        16778240 + 1024 * i for i in range(4)
    ]
    assert len(s.shares) == 1 and s.shares[0].with_audio
    assert s.meeting.loop_s is not None and s.meeting.ends_at is None


def test_builtin_failures_and_endings():
    assert load_scenario("auth_failed").meeting.sdk_failure == "AUTHRET_JWTTOKENWRONG"
    assert (
        load_scenario("wrong_passcode").meeting.sdk_failure
        == "MEETING_FAIL_PASSWORD_ERR"
    )
    assert (
        load_scenario("meeting_over").meeting.sdk_failure == "MEETING_FAIL_MEETING_OVER"
    )
    assert load_scenario("host_ends").meeting.ends_at == 3.0
    assert load_scenario("waiting_room").meeting.waiting_room_s == 1.0
    slides = load_scenario("share_slides").shares[0]
    assert (slides.pattern, slides.slide_s) == ("slides", 1.0)
    four = load_scenario("four_speakers")
    assert len(four.participants) == 4 and not four.shares
    assert four.meeting.loop_s is not None


def test_unknown_builtin_lists_the_choices():
    with pytest.raises(InvalidRequest, match="unknown built-in scenario 'nope'") as e:
        load_scenario("nope")
    assert "four_speakers" in e.value.message
    assert e.value.code is ErrorCode.INVALID_REQUEST


def test_path_is_loaded_and_relative_audio_resolves(tmp_path):
    (tmp_path / "clips").mkdir()
    write_wav(tmp_path / "clips" / "a.wav")
    path = tmp_path / "mine.toml"
    path.write_text(ALICE + 'audio = { file = "clips/a.wav" }\n')
    scenario = load_scenario(str(path))
    assert scenario.path == path.resolve()
    assert scenario.participants[0].audio.file == (tmp_path / "clips" / "a.wav")


def test_missing_path(tmp_path):
    with pytest.raises(InvalidRequest, match="cannot read"):
        load_scenario(str(tmp_path / "absent.toml"))


def test_defaults():
    s = parse(ALICE + "[[share]]\nuser_id = 16778240\nstart = 1.0\n")
    p = s.participants[0]
    assert (p.amplitude, p.joins_at, p.leaves_at, p.speaks) == (0.25, 0.0, None, ())
    assert (p.audio.kind, p.audio.tone_hz) == ("tone", 440)
    share = s.shares[0]
    assert (share.width, share.height, share.fps) == (1280, 720, 10.0)
    assert (share.pattern, share.slide_s, share.with_audio) == ("moving", 3.0, False)
    assert (share.stop, share.audio.tone_hz, share.amplitude) == (None, 660, 0.25)
    m = s.meeting
    assert (m.connect_s, m.join_result, m.sdk_failure) == (0.05, "ok", None)
    assert (m.waiting_for_host_s, m.waiting_room_s, m.ends_at) == (0.0, 0.0, None)
    assert (m.loop_s, m.stamp_capture) == (None, False)
    assert m.end_reason == "EndMeetingReason_EndByHost"
    assert parse(ALICE.replace('name = "Alice"\n', "")).participants[0].name == (
        "User 16778240"
    )


def test_empty_scenario_is_a_meeting_with_nobody():
    s = parse("")
    assert s.participants == () and s.shares == ()


def test_full_participant_and_meeting():
    s = parse(
        ALICE
        + """
audio = { noise_seed = 7 }
amplitude = 0.5
speaks = [[0, 1.5], [2.0, 3]]
joins_at = 0.5
leaves_at = 4
[meeting]
connect_s = 0.01
waiting_for_host_s = 0.2
waiting_room_s = 0.3
ends_at = 9
loop = true
stamp_capture = true
end_reason = "EndMeetingReason_KickByHost"
"""
    )
    p = s.participants[0]
    assert p.audio.noise_seed == 7 and p.amplitude == 0.5
    assert p.speaks == ((0.0, 1.5), (2.0, 3.0))
    assert (p.joins_at, p.leaves_at) == (0.5, 4.0)
    m = s.meeting
    assert (m.connect_s, m.waiting_for_host_s, m.waiting_room_s) == (0.01, 0.2, 0.3)
    # The default loop period is the latest time named in the timeline.
    assert m.loop_s == 4.0 and s.loop_frames == 400
    assert m.ends_at == 9.0 and m.stamp_capture
    assert m.end_reason == "EndMeetingReason_KickByHost"


def test_loop_with_nothing_to_repeat_does_not_loop():
    assert parse(ALICE + "[meeting]\nloop = true\n").meeting.loop_s is None


def test_loop_s_given_but_loop_off_does_not_loop():
    assert parse(ALICE + "[meeting]\nloop_s = 5\n").meeting.loop_s is None


@pytest.mark.parametrize(
    ("join_result", "sdk_failure"),
    [
        ("ok", None),
        ("auth_failed", "AUTHRET_JWTTOKENWRONG"),
        ("wrong_passcode", "MEETING_FAIL_PASSWORD_ERR"),
        ("meeting_over", "MEETING_FAIL_MEETING_OVER"),
        ("sdk_init_failed", "SDKERR_UNINITIALIZE"),
        ("MEETING_FAIL_MEETING_NOT_EXIST", "MEETING_FAIL_MEETING_NOT_EXIST"),
        ("AUTHRET_KEYORSECRETWRONG", "AUTHRET_KEYORSECRETWRONG"),
    ],
)
def test_join_results(join_result, sdk_failure):
    s = parse(f'[meeting]\njoin_result = "{join_result}"\n')
    assert s.meeting.sdk_failure == sdk_failure


def test_to_frame_absorbs_binary_rounding():
    assert to_frame(0.07) == 7
    assert to_frame(0.0) == 0
    assert to_frame(0.001) == 1
    assert to_frame(1.0049) == 101


SHARE = "[[share]]\nuser_id = 16778240\nstart = 1.0\n"

# (scenario text, words the message must contain)
INVALID = [
    ("this is = not toml ]", "not valid TOML"),
    ("colour = 1\n", "top level: unknown key(s): colour"),
    ("participant = 3\n", "participant: must be an array of tables"),
    (ALICE + "voice = 1\n", "participant[0]: unknown key(s): voice"),
    ("[[participant]]\nname = 'x'\n", "participant[0].user_id: is required"),
    ("[[participant]]\nuser_id = '1'\n", "user_id: must be an integer, not a string"),
    ("[[participant]]\nuser_id = 0\n", "user_id: must be between 1"),
    ("[[participant]]\nuser_id = 4294967296\n", "user_id: must be between 1"),
    ("[[participant]]\nuser_id = true\n", "must be an integer, not a boolean"),
    (ALICE + ALICE, "participant[1].user_id: duplicate user_id 16778240"),
    (ALICE.replace('"Alice"', "5"), "name: must be a string, not an integer"),
    (ALICE + "amplitude = 1.5\n", "amplitude: must be at least 0.0 and at most 1.0"),
    (ALICE + "amplitude = -0.1\n", "amplitude: must be at least 0.0"),
    (ALICE + "amplitude = nan\n", "amplitude: must be finite"),
    (ALICE + "amplitude = '1'\n", "amplitude: must be a number, not a string"),
    (ALICE + "audio = 440\n", "participant[0].audio: must be a table"),
    (ALICE + "audio = {}\n", "exactly one of tone_hz, file or noise_seed"),
    (ALICE + "audio = { tone_hz = 1, noise_seed = 2 }\n", "exactly one of"),
    (ALICE + "audio = { tone_hz = 1, gain = 2 }\n", "audio: unknown key(s): gain"),
    (ALICE + "audio = { tone_hz = 0 }\n", "tone_hz: must be above 0"),
    (ALICE + "audio = { tone_hz = 16000 }\n", "tone_hz: must be above 0"),
    (ALICE + "audio = { noise_seed = -1 }\n", "noise_seed: must be between 0"),
    (ALICE + "audio = { file = 'nope.wav' }\n", "audio.file: no such file"),
    (ALICE + "audio = { file = 3 }\n", "audio.file: must be a string"),
    (ALICE + "speaks = [1, 2]\n", "speaks[0]: must be a [start, stop] pair"),
    (ALICE + "speaks = [[1, 2, 3]]\n", "speaks[0]: must be a [start, stop] pair"),
    (ALICE + "speaks = 'always'\n", "speaks: must be an array of [start, stop]"),
    (ALICE + "speaks = [[2, 1]]\n", "speaks[0]: start 2.0 must be less than stop"),
    (ALICE + "speaks = [[0, 1], [3, 3]]\n", "speaks[1]: start 3.0 must be less"),
    (ALICE + "speaks = [[-1, 1]]\n", "speaks[0]: must be at least 0.0, not -1"),
    (ALICE + "speaks = [['a', 1]]\n", "speaks[0]: must be a number"),
    (ALICE + "joins_at = -2\n", "joins_at: must be at least 0.0"),
    (ALICE + "joins_at = 2\nleaves_at = 2\n", "leaves_at: must be later than"),
    (ALICE + "joins_at = inf\n", "joins_at: must be finite"),
    (SHARE, "share[0].user_id: no participant has 16778240"),
    (ALICE + "[[share]]\nstart = 1.0\n", "share[0].user_id: is required"),
    (ALICE + "[[share]]\nuser_id = 16778240\n", "share[0].start: is required"),
    (ALICE + SHARE + "stop = 1.0\n", "share[0].stop: must be later than start"),
    (ALICE + SHARE + "width = 641\n", "share[0].width: must be even"),
    (ALICE + SHARE + "height = 8\n", "share[0].height: must be between 16"),
    (ALICE + SHARE + "fps = 0\n", "share[0].fps: must be above 0"),
    (ALICE + SHARE + "fps = 101\n", "fps: must be above 0.0 and at most 100"),
    (ALICE + SHARE + "pattern = 'spiral'\n", 'pattern: must be "moving" or'),
    (ALICE + SHARE + "slide_s = 0\n", "slide_s: must be above 0"),
    (ALICE + SHARE + "with_audio = 1\n", "with_audio: must be true or false"),
    (ALICE + SHARE + "audio = { beep = 1 }\n", "share[0].audio: needs exactly"),
    (ALICE + SHARE + "codec = 'h264'\n", "share[0]: unknown key(s): codec"),
    (
        ALICE + SHARE + "stop = 5.0\n" + SHARE.replace("1.0", "4.0"),
        "share[1].start: overlaps another share",
    ),
    (ALICE + SHARE + SHARE.replace("1.0", "4.0"), "overlaps another share"),
    (ALICE + "joins_at = 2\n" + SHARE, "share[0].start: the sharer joins only at"),
    (ALICE + "leaves_at = 3\n" + SHARE, "share[0].stop: must be at most the sharer"),
    (
        ALICE + "leaves_at = 3\n" + SHARE + "stop = 4\n",
        "share[0].stop: must be at most the sharer's leaves_at (3.0)",
    ),
    ("meeting = 1\n", "meeting: must be a table"),
    ("[meeting]\nwaiting = 1\n", "meeting: unknown key(s): waiting"),
    ("[meeting]\nconnect_s = -1\n", "meeting.connect_s: must be at least 0.0"),
    ("[meeting]\nwaiting_room_s = -1\n", "meeting.waiting_room_s: must be at least"),
    ("[meeting]\nwaiting_for_host_s = 'x'\n", "waiting_for_host_s: must be a number"),
    ("[meeting]\nends_at = -3\n", "meeting.ends_at: must be at least 0.0"),
    ("[meeting]\njoin_result = 'maybe'\n", "meeting.join_result: must be one of ok"),
    ("[meeting]\njoin_result = 'MEETING_SUCCESS'\n", "meeting.join_result"),
    ("[meeting]\nend_reason = 'Tired'\n", "meeting.end_reason: must be an"),
    ("[meeting]\nend_reason = 'EndMeetingReason_None'\n", "meeting.end_reason"),
    ("[meeting]\nloop = 'yes'\n", "meeting.loop: must be true or false"),
    ("[meeting]\nloop_s = 0\n", "meeting.loop_s: must be above 0"),
    ("[meeting]\nstamp_capture = 1\n", "stamp_capture: must be true or false"),
    (
        ALICE + "speaks = [[0, 10]]\n[meeting]\nloop = true\nloop_s = 5\n",
        "meeting.loop_s: must be at least 10.0",
    ),
    ("description = 3\n", "description: must be a string"),
]


@pytest.mark.parametrize(("text", "expected"), INVALID)
def test_invalid_scenarios_name_the_scenario_and_key(text, expected):
    with pytest.raises(InvalidRequest) as excinfo:
        parse(text)
    assert excinfo.value.code is ErrorCode.INVALID_REQUEST
    assert excinfo.value.message.startswith("scenario 'test.toml': ")
    assert expected in excinfo.value.message


def test_audio_file_must_be_a_readable_wav(tmp_path):
    (tmp_path / "junk.wav").write_bytes(b"RIFF but not really")
    with pytest.raises(InvalidRequest, match="not a PCM WAV file"):
        parse(ALICE + 'audio = { file = "junk.wav" }\n', tmp_path)
    write_wav(tmp_path / "empty.wav", frames=0)
    with pytest.raises(InvalidRequest, match="no audio in"):
        parse(ALICE + 'audio = { file = "empty.wav" }\n', tmp_path)
    (tmp_path / "dir.wav").mkdir()
    with pytest.raises(InvalidRequest, match="no such file"):
        parse(ALICE + 'audio = { file = "dir.wav" }\n', tmp_path)


def test_audio_file_is_not_decoded_at_parse_time(tmp_path):
    # A header that promises more frames than the file holds still passes: decoding
    # waits for the worker, which is what keeps validation cheap.
    write_wav(tmp_path / "ok.wav", frames=32000)
    data = (tmp_path / "ok.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(data[:200])
    s = parse(ALICE + 'audio = { file = "cut.wav" }\n', tmp_path)
    assert s.participants[0].audio.kind == "file"
