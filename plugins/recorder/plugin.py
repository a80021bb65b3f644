"""The recorder: every stream of a meeting into WAV files, as it is heard.

Theory of operation
-------------------
For each meeting run the recorder makes a folder (see :mod:`plugins.recorder.files`)
when the first frame arrives, and a file for each stream when that stream's first frame
arrives: ``mixed.wav`` for everyone, ``<user_id>-<name>.wav`` for each participant
(one_way), ``share-<user_id>-<name>.wav`` for the sound of a screen share. Files are
32 kHz mono S16LE and hold exactly the frames the appliance received, in order, the
same bytes a WebSocket client of that stream gets.

A participant's file holds only the audio the SDK delivered for them, which is when
they spoke: silence is not written, so the file is shorter than ``mixed.wav`` and not
aligned with it in time. (Padding gaps with silence would need a clock to measure the
gaps by, and jitter in delivery would then change the bytes.)

Every ``header_interval_s`` (one second by default) of meeting traffic, each file of the
meeting writes what it holds and brings its header up to date (:mod:`.wav`), so a kill
-9 of the appliance leaves playable files missing at most that much. Files are closed
when the run finishes (the meeting ended or was left) and at shutdown.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from appliance.drivers.base import SAMPLE_RATE
from appliance.plugins import (
    AudioFrame,
    AudioType,
    MeetingInfo,
    PluginContext,
    hookimpl,
)
from plugins.recorder import files
from plugins.recorder.wav import GrowingWav

log = logging.getLogger(__name__)

_STREAMS = {AudioType.MIXED: "mixed", AudioType.ONE_WAY: "one_way"}


@dataclass(eq=False)
class _Recording:
    """The files of one meeting run."""

    meeting: MeetingInfo
    folder: Path | None = None
    names: dict[int, str] = field(default_factory=dict)
    writers: dict[tuple[int, int], GrowingWav | None] = field(default_factory=dict)
    next_sync: float = 0.0


class RecorderPlugin:
    """Records mixed, per-participant and share audio of every meeting to WAV."""

    hmb_options = {
        "mixed": True,
        "one_way": True,
        "share_audio": True,
        "header_interval_s": 1.0,
    }

    def __init__(self) -> None:
        self.data_dir = Path("data")
        self._recordings: dict[MeetingInfo, _Recording] = {}

    @hookimpl
    def on_plugin_start(self, context: PluginContext) -> None:
        self.data_dir = context.data_dir

    @hookimpl
    def on_meeting_started(self, meeting: MeetingInfo) -> None:
        self._recordings[meeting] = _Recording(meeting)

    @hookimpl
    def on_participant_joined(
        self, meeting: MeetingInfo, user_id: int, name: str
    ) -> None:
        recording = self._recordings.get(meeting)
        if recording is not None:
            recording.names[user_id] = name

    @hookimpl
    def on_audio_frame(self, meeting: MeetingInfo, frame: AudioFrame) -> None:
        recording = self._recordings.get(meeting)
        if recording is None:
            return
        key = (frame.audio_type, frame.user_id)
        writer = recording.writers.get(key, False)
        if writer is False:
            writer = recording.writers[key] = self._open(recording, frame)
        if writer is None:
            return
        writer.append(frame.pcm)
        now = time.monotonic()
        if now >= recording.next_sync:
            recording.next_sync = now + float(meeting.options["header_interval_s"])
            for each in recording.writers.values():
                if each is not None:
                    each.sync()

    @hookimpl
    def on_meeting_finished(self, meeting: MeetingInfo) -> None:
        recording = self._recordings.pop(meeting, None)
        if recording is not None:
            self._close(recording)

    @hookimpl
    def on_plugin_stop(self) -> None:
        while self._recordings:
            _, recording = self._recordings.popitem()
            self._close(recording)

    def _open(self, recording: _Recording, frame: AudioFrame) -> GrowingWav | None:
        """The file of a stream's first frame, or ``None`` if it is not recorded."""
        meeting = recording.meeting
        stream = _STREAMS.get(frame.audio_type, "share")
        option = "share_audio" if stream == "share" else stream
        if not meeting.options[option]:
            return None
        if recording.folder is None:
            recording.folder = files.new_session_dir(
                self.data_dir, meeting.meeting_id, meeting.started_utc
            )
            log.info(
                "recording meeting_id=%s folder=%s",
                meeting.meeting_id,
                recording.folder,
            )
        name = files.file_name(
            stream, frame.user_id, recording.names.get(frame.user_id)
        )
        return GrowingWav(recording.folder / name, SAMPLE_RATE)

    def _close(self, recording: _Recording) -> None:
        for writer in recording.writers.values():
            if writer is None:
                continue
            try:
                writer.close()
            except OSError as exc:
                # Keep closing the others; this file keeps its last synced state.
                log.error(
                    "recording not closed cleanly meeting_id=%s file=%s error=%s",
                    recording.meeting.meeting_id,
                    writer.path,
                    exc,
                )
        if recording.folder is not None:
            log.info(
                "recording finished meeting_id=%s folder=%s files=%d",
                recording.meeting.meeting_id,
                recording.folder,
                sum(1 for w in recording.writers.values() if w is not None),
            )
