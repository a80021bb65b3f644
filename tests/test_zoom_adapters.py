"""The callback adapters turn the binding's raw-data objects into driver events.

The fakes below have exactly the binding's method names (``AudioRawData``,
``YUVRawDataI420``); ``test_zoom_binding.py`` checks those names against the
installed binding.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from appliance.drivers.base import AudioType
from appliance.drivers.zoom.adapters import AudioAdapter, ShareFrameAdapter, i420_size

pytestmark = pytest.mark.zoom


@dataclass
class FakeAudio:
    pcm: bytes
    rate: int = 32000
    channels: int = 1

    def GetBuffer(self) -> bytes:
        return self.pcm

    def GetBufferLen(self) -> int:
        return len(self.pcm)

    def GetSampleRate(self) -> int:
        return self.rate

    def GetChannelNum(self) -> int:
        return self.channels


@dataclass
class FakeI420:
    width: int
    height: int
    y: bytes
    u: bytes
    v: bytes
    whole: bool = True

    def GetStreamWidth(self) -> int:
        return self.width

    def GetStreamHeight(self) -> int:
        return self.height

    def GetBuffer(self) -> bytes:
        return self.y + self.u + self.v if self.whole else self.y

    def GetBufferLen(self) -> int:
        return len(self.GetBuffer())

    def GetYBuffer(self) -> bytes:
        return self.y

    def GetUBuffer(self) -> bytes:
        return self.u

    def GetVBuffer(self) -> bytes:
        return self.v


@dataclass
class Recorder:
    audio_calls: list[tuple[AudioType, int, int, bytes]] = field(default_factory=list)
    frames: list[tuple[int, int, int, int, bytes]] = field(default_factory=list)

    def audio(
        self, audio_type: AudioType, user_id: int, capture_ns: int, pcm: Any
    ) -> None:
        self.audio_calls.append((audio_type, user_id, capture_ns, bytes(pcm)))

    def share_frame(
        self, user_id: int, capture_ns: int, width: int, height: int, i420: Any
    ) -> None:
        self.frames.append((user_id, capture_ns, width, height, bytes(i420)))


def pcm_ramp(samples: int) -> bytes:
    return (np.arange(samples, dtype="<i2") * 7).tobytes()


def test_mixed_one_way_and_share_audio_pass_through_unchanged() -> None:
    events = Recorder()
    adapter = AudioAdapter(events)  # type: ignore[arg-type]
    pcm = pcm_ramp(320)
    before = time.monotonic_ns()
    adapter.mixed(FakeAudio(pcm))
    adapter.one_way(FakeAudio(pcm), 16778240)
    adapter.share(FakeAudio(pcm), 16782336)
    after = time.monotonic_ns()

    kinds = [(t, u) for t, u, _, _ in events.audio_calls]
    assert kinds == [
        (AudioType.MIXED, 0),
        (AudioType.ONE_WAY, 16778240),
        (AudioType.SHARE, 16782336),
    ]
    for _, _, capture_ns, data in events.audio_calls:
        assert data == pcm
        assert before <= capture_ns <= after
    assert adapter.stats.frames == 3
    assert adapter.stats.converted == 0


def test_capture_time_is_taken_before_the_buffer_is_read() -> None:
    events = Recorder()
    adapter = AudioAdapter(events)  # type: ignore[arg-type]
    read_at: list[int] = []

    class SlowAudio(FakeAudio):
        def GetBuffer(self) -> bytes:
            read_at.append(time.monotonic_ns())
            time.sleep(0.01)
            return super().GetBuffer()

    adapter.mixed(SlowAudio(pcm_ramp(320)))
    assert events.audio_calls[0][2] <= read_at[0]


def test_stereo_audio_is_downmixed_to_mono() -> None:
    events = Recorder()
    adapter = AudioAdapter(events)  # type: ignore[arg-type]
    left = np.full(320, 1000, dtype="<i2")
    right = np.full(320, 3000, dtype="<i2")
    stereo = np.stack([left, right], axis=1).reshape(-1).tobytes()
    adapter.mixed(FakeAudio(stereo, channels=2))
    (_, _, _, mono) = events.audio_calls[0]
    assert np.frombuffer(mono, dtype="<i2").tolist() == [2000] * 320
    assert adapter.stats.converted == 1


def test_48khz_audio_is_resampled_to_32khz_per_stream() -> None:
    events = Recorder()
    adapter = AudioAdapter(events)  # type: ignore[arg-type]
    tone = (np.sin(np.arange(48000) * 2 * np.pi * 440 / 48000) * 8000).astype("<i2")
    for start in range(0, 48000, 480):
        chunk = tone[start : start + 480].tobytes()
        adapter.one_way(FakeAudio(chunk, rate=48000), 7)
    out = b"".join(pcm for _, _, _, pcm in events.audio_calls)
    # One second in, about one second out (the resampler holds back a few samples).
    assert 31000 <= len(out) // 2 <= 32000
    assert {u for _, u, _, _ in events.audio_calls} == {7}


def test_malformed_audio_is_dropped_not_raised() -> None:
    events = Recorder()
    adapter = AudioAdapter(events)  # type: ignore[arg-type]
    adapter.mixed(FakeAudio(b"\x01\x02\x03", channels=2))
    assert events.audio_calls == []
    assert adapter.stats.dropped == 1


def planes(width: int, height: int) -> tuple[bytes, bytes, bytes]:
    chroma = ((width + 1) // 2) * ((height + 1) // 2)
    return bytes([16]) * width * height, bytes([128]) * chroma, bytes([240]) * chroma


@pytest.mark.parametrize("whole", [True, False])
def test_share_frame_becomes_one_contiguous_i420_buffer(whole: bool) -> None:
    events = Recorder()
    adapter = ShareFrameAdapter(events, 16782336)  # type: ignore[arg-type]
    y, u, v = planes(64, 36)
    before = time.monotonic_ns()
    adapter.frame(FakeI420(64, 36, y, u, v, whole=whole))
    (user_id, capture_ns, width, height, i420) = events.frames[0]
    assert (user_id, width, height) == (16782336, 64, 36)
    assert i420 == y + u + v
    assert len(i420) == i420_size(64, 36) == 64 * 36 * 3 // 2
    assert capture_ns >= before


def test_odd_sized_frames_round_chroma_up() -> None:
    events = Recorder()
    adapter = ShareFrameAdapter(events, 1)  # type: ignore[arg-type]
    y, u, v = planes(5, 3)
    assert len(u) == 3 * 2
    adapter.frame(FakeI420(5, 3, y, u, v))
    assert len(events.frames[0][4]) == i420_size(5, 3) == 15 + 12


def test_truncated_share_frame_is_dropped() -> None:
    events = Recorder()
    adapter = ShareFrameAdapter(events, 1)  # type: ignore[arg-type]
    y, u, v = planes(64, 36)
    adapter.frame(FakeI420(64, 36, y, u, v[:-1]))
    adapter.frame(FakeI420(0, 0, b"", b"", b""))
    assert events.frames == []
    assert adapter.stats.dropped == 2
