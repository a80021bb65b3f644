"""The one exception hierarchy of the appliance.

Every failure a client can see carries an :class:`ErrorCode`. Each code knows its HTTP
status and its WebSocket close code, so the HTTP layer is the only place that turns an
exception into a response, and nothing else needs a mapping of its own.
"""

from __future__ import annotations

import enum
from typing import Any


class ErrorCode(enum.Enum):
    """Error codes of the REST and WebSocket contract.

    The value is ``(http_status, websocket_close_code, name)``; the name keeps codes
    that share a status distinct members rather than aliases.
    """

    INVALID_MEETING_ID = (400, 4400, "INVALID_MEETING_ID")
    INVALID_REQUEST = (400, 4400, "INVALID_REQUEST")
    AUTH_FAILED = (401, 4401, "AUTH_FAILED")
    MEETING_NOT_FOUND = (404, 4404, "MEETING_NOT_FOUND")
    MEETING_ALREADY_EXISTS = (409, 4409, "MEETING_ALREADY_EXISTS")
    # A meeting's recording or share snapshot that does not exist (plugin endpoints).
    RECORDING_NOT_FOUND = (404, 4404, "RECORDING_NOT_FOUND")
    SHARE_NOT_FOUND = (404, 4404, "SHARE_NOT_FOUND")
    SDK_INIT_FAILED = (500, 1011, "SDK_INIT_FAILED")
    JOIN_MEETING_FAILED = (500, 1011, "JOIN_MEETING_FAILED")
    # A meeting that was running and ended: the host ended it, the bot was removed or
    # it left on request. Not an HTTP answer; it reaches clients in status and streams.
    MEETING_ENDED = (410, 1000, "MEETING_ENDED")
    # The worker process of a meeting died (crash, kill -9, out of memory).
    WORKER_DIED = (500, 1011, "WORKER_DIED")
    INTERNAL_ERROR = (500, 1011, "INTERNAL_ERROR")

    @property
    def http_status(self) -> int:
        return self.value[0]

    @property
    def close_code(self) -> int:
        return self.value[1]


class ApplianceError(Exception):
    """Root of every error the appliance reports to a client."""

    code: ErrorCode = ErrorCode.INTERNAL_ERROR

    def __init__(self, message: str, *, code: ErrorCode | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code.name, "message": self.message}


class InvalidMeetingID(ApplianceError):
    code = ErrorCode.INVALID_MEETING_ID


class InvalidRequest(ApplianceError):
    code = ErrorCode.INVALID_REQUEST


class MeetingNotFound(ApplianceError):
    code = ErrorCode.MEETING_NOT_FOUND


class RecordingNotFound(ApplianceError):
    code = ErrorCode.RECORDING_NOT_FOUND


class ShareNotFound(ApplianceError):
    code = ErrorCode.SHARE_NOT_FOUND


class MeetingAlreadyExists(ApplianceError):
    code = ErrorCode.MEETING_ALREADY_EXISTS


class DriverUnavailable(ApplianceError):
    """The configured driver cannot run on this host (for example a missing extra)."""

    code = ErrorCode.SDK_INIT_FAILED


class WorkerProtocolError(ApplianceError):
    """The peer on the worker socket sent bytes that are not our protocol."""

    code = ErrorCode.INTERNAL_ERROR
