"""Turn the SDK binding's raw-data objects into :class:`DriverEvents` calls.

Theory of operation
-------------------
The binding hands each raw-data callback an object that is valid only during the
callback: ``AudioRawData`` (``GetBuffer``, ``GetBufferLen``, ``GetSampleRate``,
``GetChannelNum``) for audio and ``YUVRawDataI420`` (``GetStreamWidth``,
``GetStreamHeight``, ``GetBuffer``, ``GetBufferLen``, ``GetYBuffer``, ``GetUBuffer``,
``GetVBuffer``) for share video. The adapters here read everything they need from it
at once, stamp ``capture_ns`` with ``time.monotonic_ns()`` as their first act, and
call the events sink. They only use those method names, so tests drive them with
duck-typed fakes.

The appliance streams 32 kHz mono S16LE. The driver asks the SDK for exactly that in
the join parameters, so the common path passes the SDK's bytes through untouched. If
the SDK delivers something else anyway (stereo, or 48 kHz), the audio is downmixed and
resampled per stream, so clients still get the format the WebSocket announced.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from appliance.drivers.base import CHANNELS, SAMPLE_RATE, AudioType, DriverEvents

logger = logging.getLogger(__name__)


class RawAudio(Protocol):
    """The part of the binding's ``AudioRawData`` the adapters use."""

    def GetBuffer(self) -> bytes: ...

    def GetBufferLen(self) -> int: ...

    def GetSampleRate(self) -> int: ...

    def GetChannelNum(self) -> int: ...


class RawI420(Protocol):
    """The part of the binding's ``YUVRawDataI420`` the adapters use."""

    def GetStreamWidth(self) -> int: ...

    def GetStreamHeight(self) -> int: ...

    def GetBuffer(self) -> bytes: ...

    def GetBufferLen(self) -> int: ...

    def GetYBuffer(self) -> bytes: ...

    def GetUBuffer(self) -> bytes: ...

    def GetVBuffer(self) -> bytes: ...


@dataclass
class AdapterStats:
    frames: int = 0
    converted: int = 0
    dropped: int = 0


def i420_size(width: int, height: int) -> int:
    """Bytes in an I420 frame: a full-size Y plane, two quarter-size chroma planes."""
    chroma = ((width + 1) // 2) * ((height + 1) // 2)
    return width * height + 2 * chroma


class AudioAdapter:
    """Callbacks for the binding's ``ZoomSDKAudioRawDataDelegateCallbacks``."""

    def __init__(self, events: DriverEvents) -> None:
        self._events = events
        self._resamplers: dict[tuple[AudioType, int], tuple[int, Any]] = {}
        self._warned: set[tuple[int, int]] = set()
        self.stats = AdapterStats()

    def mixed(self, data: RawAudio) -> None:
        self._deliver(time.monotonic_ns(), AudioType.MIXED, 0, data)

    def one_way(self, data: RawAudio, user_id: int) -> None:
        self._deliver(time.monotonic_ns(), AudioType.ONE_WAY, int(user_id), data)

    def share(self, data: RawAudio, user_id: int) -> None:
        self._deliver(time.monotonic_ns(), AudioType.SHARE, int(user_id), data)

    def _deliver(
        self, capture_ns: int, audio_type: AudioType, user_id: int, data: RawAudio
    ) -> None:
        pcm = data.GetBuffer()
        rate = int(data.GetSampleRate())
        channels = int(data.GetChannelNum())
        if rate != SAMPLE_RATE or channels != CHANNELS:
            pcm = self._convert(audio_type, user_id, pcm, rate, channels)
            if pcm is None:
                self.stats.dropped += 1
                return
            self.stats.converted += 1
        if not pcm:
            return
        self.stats.frames += 1
        self._events.audio(audio_type, user_id, capture_ns, pcm)

    def _convert(
        self,
        audio_type: AudioType,
        user_id: int,
        pcm: bytes,
        rate: int,
        channels: int,
    ) -> bytes | None:
        if (rate, channels) not in self._warned:
            self._warned.add((rate, channels))
            logger.warning(
                "the SDK delivers %d Hz, %d channel(s) audio instead of %d Hz mono; "
                "converting",
                rate,
                channels,
                SAMPLE_RATE,
            )
        if rate <= 0 or channels <= 0 or len(pcm) % (2 * channels):
            return None
        samples = np.frombuffer(pcm, dtype="<i2")
        if channels > 1:
            frames = samples.reshape(-1, channels).astype(np.int32)
            samples = (frames.sum(axis=1) // channels).astype("<i2")
        if rate != SAMPLE_RATE:
            samples = self._resampler(audio_type, user_id, rate).resample_chunk(samples)
        return np.ascontiguousarray(samples, dtype="<i2").tobytes()

    def _resampler(self, audio_type: AudioType, user_id: int, rate: int) -> Any:
        # One stateful resampler per stream keeps the filter continuous across frames.
        key = (audio_type, user_id)
        known = self._resamplers.get(key)
        if known is not None and known[0] == rate:
            return known[1]
        import soxr

        stream = soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="int16")
        self._resamplers[key] = (rate, stream)
        return stream


class ShareFrameAdapter:
    """The frame callback of one share's ``ZoomSDKRendererDelegateCallbacks``."""

    def __init__(self, events: DriverEvents, user_id: int) -> None:
        self._events = events
        self.user_id = int(user_id)
        self.stats = AdapterStats()

    def frame(self, data: RawI420) -> None:
        capture_ns = time.monotonic_ns()
        width = int(data.GetStreamWidth())
        height = int(data.GetStreamHeight())
        expected = i420_size(width, height)
        if width <= 0 or height <= 0:
            self.stats.dropped += 1
            return
        i420 = data.GetBuffer() if data.GetBufferLen() == expected else b""
        if len(i420) != expected:
            # Some SDK builds hand out the planes separately rather than one block.
            i420 = data.GetYBuffer() + data.GetUBuffer() + data.GetVBuffer()
        if len(i420) != expected:
            self.stats.dropped += 1
            if self.stats.dropped in (1, 100, 10_000):
                logger.warning(
                    "dropping share frame of user %d: %d bytes for %dx%d, expected %d",
                    self.user_id,
                    len(i420),
                    width,
                    height,
                    expected,
                )
            return
        self.stats.frames += 1
        self._events.share_frame(self.user_id, capture_ns, width, height, i420)
