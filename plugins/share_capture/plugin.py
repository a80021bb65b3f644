"""Share capture: a PNG snapshot whenever a screen share's content changes.

Theory of operation
-------------------
Each share frame is reduced to a coarse grid of luma averages and compared with the
grid of the last snapshot (:mod:`.image`). A frame whose content changed becomes a
snapshot, unless the last one is less than ``1 / max_fps`` seconds older (by capture
time); then the comparison is made again with the next frame, so the last state of a
burst of changes is still captured once the interval has passed. A still share (a
slide left on screen) gives one snapshot; moving content gives ``max_fps`` a second.
A new share always starts with a snapshot.

Snapshots are written to a temporary name and renamed, so a reader never sees half a
PNG, and each is recorded in ``index.jsonl`` (:mod:`.files`). With ``video`` on and
PyAV installed, every frame also goes into an MP4 per share (:mod:`.video`).

The latest frame of each live meeting is kept (a reference, not a copy) for
``GET /api/meetings/{id}/share/latest.png``; :meth:`ShareCapturePlugin.latest_png`
encodes it on the HTTP side's worker thread.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import numpy as np

from appliance.plugins import MeetingInfo, PluginContext, ShareFrame, hookimpl
from plugins.share_capture import files, image, video

log = logging.getLogger(__name__)


@dataclass(eq=False)
class _Capture:
    """What the plugin keeps of one meeting run."""

    meeting: MeetingInfo
    folder: Path | None = None
    index: IO[str] | None = None
    count: int = 0
    films: int = 0
    saved_grid: np.ndarray | None = None
    saved_ns: int | None = None
    video: video.ShareVideo | None = None

    def reset(self) -> None:
        """A share began or ended: the next frame starts afresh."""
        self.saved_grid = None
        self.saved_ns = None
        self.close_video()

    def close_video(self) -> None:
        if self.video is not None:
            movie, self.video = self.video, None
            movie.close()

    def close(self) -> None:
        try:
            self.close_video()
        finally:
            if self.index is not None:
                self.index.close()
                self.index = None


class ShareCapturePlugin:
    """Snapshots of screen shares (PNG, with an index) and optionally an MP4."""

    hmb_options = {
        "max_fps": 1.0,
        "threshold": 4.0,
        "min_blocks": 4,
        "video": False,
    }

    def __init__(self) -> None:
        self.data_dir = Path("data")
        self._captures: dict[MeetingInfo, _Capture] = {}
        # Also read by HTTP worker threads (latest_png): an entry is only ever
        # replaced or removed, and the frames in it are immutable.
        self._latest: dict[str, tuple[int, ShareFrame]] = {}

    @hookimpl
    def on_plugin_start(self, context: PluginContext) -> None:
        self.data_dir = context.data_dir
        if context.options["video"] and not video.AVAILABLE:
            log.warning(
                "share video is on but PyAV is not installed; snapshots only "
                "(pip install 'headless-meeting-bot[video]')"
            )

    @hookimpl
    def on_meeting_started(self, meeting: MeetingInfo) -> None:
        self._captures[meeting] = _Capture(meeting)

    @hookimpl
    def on_share_started(self, meeting: MeetingInfo) -> None:
        capture = self._captures.get(meeting)
        if capture is not None:
            capture.reset()

    @hookimpl
    def on_share_stopped(self, meeting: MeetingInfo) -> None:
        capture = self._captures.get(meeting)
        if capture is not None:
            capture.reset()

    @hookimpl
    def on_share_frame(self, meeting: MeetingInfo, frame: ShareFrame) -> None:
        self._latest[meeting.meeting_id] = (meeting.run, frame)
        capture = self._captures.get(meeting)
        if capture is None:
            return
        options = meeting.options
        if options["video"] and video.AVAILABLE:
            self._film(capture, frame)
        grid = image.luma_grid(frame.y)
        threshold, min_blocks = float(options["threshold"]), int(options["min_blocks"])
        if not image.changed(grid, capture.saved_grid, threshold, min_blocks):
            return
        interval_ns = 1e9 / max(float(options["max_fps"]), 1e-3)
        if capture.saved_ns is not None and (
            frame.capture_ns - capture.saved_ns < interval_ns
        ):
            return
        self._snapshot(capture, frame)
        capture.saved_grid = grid
        capture.saved_ns = frame.capture_ns

    @hookimpl
    def on_meeting_finished(self, meeting: MeetingInfo) -> None:
        latest = self._latest.get(meeting.meeting_id)
        if latest is not None and latest[0] == meeting.run:
            del self._latest[meeting.meeting_id]
        capture = self._captures.pop(meeting, None)
        if capture is not None:
            capture.close()
            if capture.count:
                log.info(
                    "share capture finished meeting_id=%s snapshots=%d folder=%s",
                    meeting.meeting_id,
                    capture.count,
                    capture.folder,
                )

    @hookimpl
    def on_plugin_stop(self) -> None:
        while self._captures:
            _, capture = self._captures.popitem()
            capture.close()
        self._latest.clear()

    def latest_png(self, meeting_id: str) -> bytes | None:
        """The latest share frame of a live meeting as PNG, or ``None``.

        Thread-safe: called from the HTTP side, not from the plugin's runner.
        """
        latest = self._latest.get(meeting_id.strip())
        return image.to_png(latest[1]) if latest is not None else None

    def _folder(self, capture: _Capture) -> Path:
        if capture.folder is None:
            meeting = capture.meeting
            capture.folder = files.new_session_dir(
                self.data_dir, meeting.meeting_id, meeting.started_utc
            )
            capture.index = open(  # noqa: SIM115 (closed with the capture)
                capture.folder / files.INDEX, "a", encoding="utf-8"
            )
        return capture.folder

    def _snapshot(self, capture: _Capture, frame: ShareFrame) -> None:
        folder = self._folder(capture)
        wall_ns = time.time_ns() - (time.monotonic_ns() - frame.capture_ns)
        when = datetime.fromtimestamp(wall_ns / 1e9, UTC)
        capture.count += 1
        name = f"{capture.count:04d}-{when:%H%M%S}.{when.microsecond // 1000:03d}Z.png"
        temporary = folder / f".{name}.tmp"
        temporary.write_bytes(image.to_png(frame))
        os.replace(temporary, folder / name)
        entry = {
            "file": name,
            "utc": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "capture_ns": frame.capture_ns,
            "user_id": frame.user_id,
            "width": frame.width,
            "height": frame.height,
        }
        assert capture.index is not None
        capture.index.write(json.dumps(entry) + "\n")
        capture.index.flush()

    def _film(self, capture: _Capture, frame: ShareFrame) -> None:
        movie = capture.video
        if movie is not None and (movie.width, movie.height) != (
            frame.width,
            frame.height,
        ):
            capture.close_video()
            movie = None
        if movie is None:
            capture.films += 1
            path = self._folder(capture) / f"share-{capture.films}.mp4"
            movie = capture.video = video.ShareVideo(
                path, frame.width, frame.height, frame.capture_ns
            )
        movie.add(frame)
