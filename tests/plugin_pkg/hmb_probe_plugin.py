"""Plugins for the tests, packaged and installed as a third party's would be.

* ``probe`` writes down what it receives: every lifecycle event, and per stream the
  number of frames and a digest of their bytes, to
  ``$HMB_DATA_DIR/probe/<meeting_id>-<run>.jsonl``;
* ``sleepy`` sleeps ``sleep_s`` on every frame (a plugin stuck on slow I/O);
* ``faulty`` raises on every frame.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from appliance.plugins import hookimpl


class Probe:
    def __init__(self) -> None:
        self.folder = Path(".")
        self.logs = {}
        self.streams = {}

    @hookimpl
    def on_plugin_start(self, context):
        self.folder = context.data_dir / "probe"
        self.folder.mkdir(parents=True, exist_ok=True)

    def _write(self, meeting, **entry):
        log = self.logs.get(meeting)
        if log is None:
            path = self.folder / f"{meeting.meeting_id}-{meeting.run}.jsonl"
            log = self.logs[meeting] = path.open("a")
        log.write(json.dumps(entry) + "\n")
        log.flush()

    @hookimpl
    def on_meeting_started(self, meeting):
        self.streams[meeting] = {}
        self._write(meeting, hook="started", options=dict(meeting.options))

    @hookimpl
    def on_meeting_status(self, meeting, status, error_code):
        self._write(meeting, hook="status", status=str(status), error_code=error_code)

    @hookimpl
    def on_participant_joined(self, meeting, user_id, name):
        self._write(meeting, hook="joined", user_id=user_id, name=name)

    @hookimpl
    def on_participant_left(self, meeting, user_id, name):
        self._write(meeting, hook="left", user_id=user_id, name=name)

    @hookimpl
    def on_share_started(self, meeting, user_id):
        self._write(meeting, hook="share_started", user_id=user_id)

    @hookimpl
    def on_share_stopped(self, meeting, user_id):
        self._write(meeting, hook="share_stopped", user_id=user_id)

    @hookimpl
    def on_audio_frame(self, meeting, frame):
        key = f"{int(frame.audio_type)}:{frame.user_id}"
        stream = self.streams[meeting].get(key)
        if stream is None:
            stream = self.streams[meeting][key] = {
                "frames": 0,
                "sha256": hashlib.sha256(),
                "dtype": str(frame.pcm.dtype),
                "writeable": bool(frame.pcm.flags.writeable),
            }
        stream["frames"] += 1
        stream["sha256"].update(frame.pcm)

    @hookimpl
    def on_share_frame(self, meeting, frame):
        stream = self.streams[meeting].setdefault(
            "video", {"frames": 0, "size": [frame.width, frame.height]}
        )
        stream["frames"] += 1

    @hookimpl
    def on_meeting_finished(self, meeting):
        streams = {
            key: {k: (v.hexdigest() if k == "sha256" else v) for k, v in s.items()}
            for key, s in self.streams.pop(meeting, {}).items()
        }
        self._write(meeting, hook="finished", streams=streams)
        self.logs.pop(meeting).close()


class Sleepy:
    hmb_options = {"sleep_s": 0.5}

    @hookimpl
    def on_audio_frame(self, meeting, frame):
        time.sleep(meeting.options["sleep_s"])

    @hookimpl
    def on_share_frame(self, meeting, frame):
        time.sleep(meeting.options["sleep_s"])


class Faulty:
    @hookimpl
    def on_audio_frame(self, frame):
        raise RuntimeError(f"faulty plugin rejects frame {frame.capture_ns}")
