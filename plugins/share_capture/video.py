"""An MP4 of a screen share, through PyAV (FFmpeg), when it is installed.

PyAV is optional (``pip install 'headless-meeting-bot[video]'``): without it,
:data:`AVAILABLE` is false and the share capture takes snapshots only. Frames are
encoded as they come, H.264 (libx264) when the FFmpeg build has it, else MPEG-4 Part 2,
timed by their capture time in milliseconds, so a share's irregular frame rate plays at
the right pace.
"""

from __future__ import annotations

import importlib.util
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from appliance.plugins import ShareFrame

# Imported when a video is made, not before: FFmpeg's libraries are large.
AVAILABLE = importlib.util.find_spec("av") is not None


class ShareVideo:
    """One MP4 file of one share at one picture size."""

    def __init__(self, path: Path, width: int, height: int, first_ns: int) -> None:
        import av

        self._av = av
        self.path = path
        self.width = width
        self.height = height
        self._first_ns = first_ns
        self._last_pts = -1
        self._container: Any = av.open(str(path), mode="w")
        codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
        stream: Any = self._container.add_stream(codec, rate=30)
        stream.width = width
        stream.height = height
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, 1000)
        self._stream = stream

    def add(self, frame: ShareFrame) -> None:
        picture = np.frombuffer(frame.i420, np.uint8).reshape(
            frame.height * 3 // 2, frame.width
        )
        video_frame = self._av.VideoFrame.from_ndarray(picture, format="yuv420p")
        # Timestamps must rise; two frames within a millisecond are spread out.
        pts = max((frame.capture_ns - self._first_ns) // 1_000_000, self._last_pts + 1)
        video_frame.pts = self._last_pts = pts
        video_frame.time_base = Fraction(1, 1000)
        for packet in self._stream.encode(video_frame):
            self._container.mux(packet)

    def close(self) -> None:
        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
        finally:
            self._container.close()
