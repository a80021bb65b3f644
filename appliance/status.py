"""Meeting statuses, named as the Zoom SDK names them."""

from __future__ import annotations

import enum


class MeetingStatus(enum.StrEnum):
    IDLE = "MEETING_STATUS_IDLE"
    CONNECTING = "MEETING_STATUS_CONNECTING"
    WAITINGFORHOST = "MEETING_STATUS_WAITINGFORHOST"
    IN_WAITING_ROOM = "MEETING_STATUS_IN_WAITING_ROOM"
    INMEETING = "MEETING_STATUS_INMEETING"
    RECONNECTING = "MEETING_STATUS_RECONNECTING"
    DISCONNECTING = "MEETING_STATUS_DISCONNECTING"
    ENDED = "MEETING_STATUS_ENDED"
    FAILED = "MEETING_STATUS_FAILED"

    @property
    def is_final(self) -> bool:
        return self in (MeetingStatus.ENDED, MeetingStatus.FAILED)
