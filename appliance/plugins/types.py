"""What plugins are handed: frozen descriptions of meetings, frames and themselves.

Frames are not copied on their way to a plugin. :attr:`AudioFrame.pcm` and the planes
of :class:`ShareFrame` are read-only numpy views of the bytes that arrived on the
worker socket. Those bytes are never modified afterwards, so a plugin may keep a view
beyond the call; but a view keeps alive the whole chunk it was received in (tens of
kilobytes for audio), so copy what you keep for long (``frame.pcm.copy()``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from appliance.drivers.base import AudioType
from appliance.protocol import codec

OptionValue = bool | int | float | str


@dataclass(frozen=True, eq=False, slots=True)
class PluginContext:
    """A plugin's view of the appliance, given once to ``on_plugin_start``.

    ``data_dir`` is ``HMB_DATA_DIR``; a plugin keeps its files in a folder of its own
    below it. ``options`` are the plugin's declared defaults overridden by the
    ``HMB_PLUGIN_<NAME>_<KEY>`` environment variables.
    """

    name: str
    data_dir: Path
    options: Mapping[str, OptionValue]


@dataclass(frozen=True, eq=False, slots=True)
class MeetingInfo:
    """One bot's run in one meeting, as one plugin sees it.

    A plugin receives the very same object for every event of the run, so it can key
    its own state by it (it hashes by identity). A meeting ID can be joined again after
    a run finished; the new run has a new ``run`` number and a new object.
    ``options`` are this plugin's options for this run: the appliance-wide ones
    overridden by the ``plugins`` field of the join request.
    """

    meeting_id: str
    run: int
    display_name: str
    started_at: datetime
    options: Mapping[str, OptionValue]

    @property
    def started_utc(self) -> str:
        """``started_at`` as a compact UTC stamp for names: ``20261203T144306Z``."""
        return self.started_at.strftime("%Y%m%dT%H%M%SZ")


@dataclass(frozen=True, eq=False, slots=True)
class AudioFrame:
    """Usually 10 ms of audio: 32 kHz mono signed 16-bit samples.

    ``audio_type`` is mixed (everyone, ``user_id`` 0), one_way (one participant) or
    share (the sound of a screen share, ``user_id`` the sharer). ``capture_ns`` is
    ``time.monotonic_ns()`` when the SDK handed the frame over (the clock is shared by
    every process of the machine). ``pcm`` is a read-only int16 view; ``pcm.data`` or
    the array itself can be written to a file without a copy.
    """

    meeting_id: str
    audio_type: AudioType
    user_id: int
    capture_ns: int
    pcm: np.ndarray[Any, np.dtype[np.int16]]


@dataclass(frozen=True, eq=False, slots=True)
class ShareFrame:
    """One picture of a screen share, YUV I420 (BT.601 limited range).

    ``y`` is ``(height, width)``, ``u`` and ``v`` are ``(height // 2, width // 2)``,
    all read-only uint8 views of ``i420``, the whole frame as it arrived.
    """

    meeting_id: str
    user_id: int
    capture_ns: int
    width: int
    height: int
    i420: memoryview
    y: np.ndarray[Any, np.dtype[np.uint8]]
    u: np.ndarray[Any, np.dtype[np.uint8]]
    v: np.ndarray[Any, np.dtype[np.uint8]]


def _read_only(array: np.ndarray) -> np.ndarray:
    # A payload assembled across socket reads lives in a bytearray, whose views are
    # writable; plugins share the buffer with every other consumer, so seal it.
    array.flags.writeable = False
    return array


def audio_frame(meeting_id: str, event: codec.Audio) -> AudioFrame:
    """The plugin view of a decoded audio frame (no copy)."""
    pcm = _read_only(np.frombuffer(event.pcm, dtype="<i2"))
    return AudioFrame(
        meeting_id, AudioType(event.audio_type), event.user_id, event.capture_ns, pcm
    )


def share_frame(meeting_id: str, event: codec.ShareFrame) -> ShareFrame:
    """The plugin view of a decoded share frame (no copy)."""
    width, height = event.width, event.height
    whole = memoryview(event.i420).toreadonly()
    luma = width * height
    chroma = (width // 2) * (height // 2)
    y = np.frombuffer(whole, np.uint8, luma).reshape(height, width)
    u = np.frombuffer(whole, np.uint8, chroma, luma).reshape(height // 2, width // 2)
    v = np.frombuffer(whole, np.uint8, chroma, luma + chroma)
    v = v.reshape(height // 2, width // 2)
    return ShareFrame(
        meeting_id,
        event.user_id,
        event.capture_ns,
        width,
        height,
        whole,
        _read_only(y),
        _read_only(u),
        _read_only(v),
    )
