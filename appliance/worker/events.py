"""The worker's :class:`~appliance.drivers.base.DriverEvents`: driver reports to frames.

Every method runs on the driver thread, copies what it is given, and returns at once.
None of them lets an exception escape: an exception escaping a Zoom SDK callback aborts
the whole process, so a failure here is logged (once per kind of failure) and swallowed.
"""

from __future__ import annotations

import logging
from typing import Any

from appliance.drivers.base import AudioType
from appliance.errors import ErrorCode
from appliance.protocol import codec
from appliance.status import MeetingStatus
from appliance.worker.outbox import Outbox

log = logging.getLogger(__name__)


def _as_bytes(buffer: Any) -> bytes:
    """A private copy of any C-contiguous buffer (bytes, memoryview, numpy array)."""
    if isinstance(buffer, bytes):
        return buffer
    return memoryview(buffer).cast("B").tobytes()


class WorkerEvents:
    """Encodes driver reports into protocol frames queued on an :class:`Outbox`."""

    def __init__(self, outbox: Outbox, meeting_id: str) -> None:
        self._outbox = outbox
        self._meeting_id = meeting_id
        self._failures_logged: set[str] = set()
        self.last_status: MeetingStatus | None = None

    def _contain(self, what: str, exc: BaseException) -> None:
        if what not in self._failures_logged:
            self._failures_logged.add(what)
            log.error(
                "driver report failed what=%s meeting_id=%s error=%r",
                what,
                self._meeting_id,
                exc,
            )

    def status(
        self,
        status: MeetingStatus,
        error_code: ErrorCode | None = None,
        message: str = "",
    ) -> None:
        try:
            self.last_status = MeetingStatus(status)
            code = error_code.name if error_code is not None else None
            self._outbox.put(codec.Status(str(status), code, message))
            log.debug(
                "status meeting_id=%s status=%s code=%s message=%r",
                self._meeting_id,
                status,
                code,
                message,
            )
        except Exception as exc:
            self._contain("status", exc)

    def participant_joined(self, user_id: int, name: str) -> None:
        try:
            self._outbox.put(codec.Participant(user_id, name, True))
        except Exception as exc:
            self._contain("participant", exc)

    def participant_left(self, user_id: int, name: str) -> None:
        try:
            self._outbox.put(codec.Participant(user_id, name, False))
        except Exception as exc:
            self._contain("participant", exc)

    def audio(
        self, audio_type: AudioType, user_id: int, capture_ns: int, pcm: Any
    ) -> None:
        try:
            frame = codec.Audio(int(audio_type), user_id, capture_ns, _as_bytes(pcm))
            self._outbox.put(frame, media=True)
        except Exception as exc:
            self._contain("audio", exc)

    def share_started(self, user_id: int) -> None:
        try:
            self._outbox.put(codec.ShareState(user_id, True))
        except Exception as exc:
            self._contain("share", exc)

    def share_stopped(self, user_id: int) -> None:
        try:
            self._outbox.put(codec.ShareState(user_id, False))
        except Exception as exc:
            self._contain("share", exc)

    def share_frame(
        self, user_id: int, capture_ns: int, width: int, height: int, i420: Any
    ) -> None:
        try:
            frame = codec.ShareFrame(
                user_id, capture_ns, width, height, _as_bytes(i420)
            )
            self._outbox.put(frame, media=True)
        except Exception as exc:
            self._contain("share_frame", exc)
