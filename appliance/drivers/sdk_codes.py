"""The one table from the Zoom SDK's result codes to the appliance's codes and statuses.

Both drivers report failures by the SDK's own enum member names (``AUTHRET_...``,
``MEETING_FAIL_...``, ``EndMeetingReason_...``), so the simulated driver fails exactly
as the real one does, and the message a client sees always names the SDK's result.
"""

from __future__ import annotations

from appliance.errors import ErrorCode
from appliance.status import MeetingStatus

# AuthResult: every failure of SDKAuth is AUTH_FAILED, except the ones that say the
# SDK itself is unusable on this host.
AUTH_RESULTS: dict[str, ErrorCode | None] = {
    "AUTHRET_SUCCESS": None,
    "AUTHRET_KEYORSECRETEMPTY": ErrorCode.AUTH_FAILED,
    "AUTHRET_KEYORSECRETWRONG": ErrorCode.AUTH_FAILED,
    "AUTHRET_ACCOUNTNOTSUPPORT": ErrorCode.AUTH_FAILED,
    "AUTHRET_ACCOUNTNOTENABLESDK": ErrorCode.AUTH_FAILED,
    "AUTHRET_UNKNOWN": ErrorCode.AUTH_FAILED,
    "AUTHRET_SERVICE_BUSY": ErrorCode.AUTH_FAILED,
    "AUTHRET_NONE": ErrorCode.AUTH_FAILED,
    "AUTHRET_OVERTIME": ErrorCode.AUTH_FAILED,
    "AUTHRET_NETWORKISSUE": ErrorCode.AUTH_FAILED,
    "AUTHRET_CLIENT_INCOMPATIBLE": ErrorCode.SDK_INIT_FAILED,
    "AUTHRET_JWTTOKENWRONG": ErrorCode.AUTH_FAILED,
    "AUTHRET_LIMIT_EXCEEDED_EXCEPTION": ErrorCode.AUTH_FAILED,
}

# MeetingFailCode: every failure to join is JOIN_MEETING_FAILED.
JOIN_FAILURES: dict[str, ErrorCode | None] = {
    "MEETING_SUCCESS": None,
    "MEETING_FAIL_NETWORK_ERR": ErrorCode.JOIN_MEETING_FAILED,
    "MEETING_FAIL_RECONNECT_ERR": ErrorCode.JOIN_MEETING_FAILED,
    "MEETING_FAIL_MMR_ERR": ErrorCode.JOIN_MEETING_FAILED,
    "MEETING_FAIL_PASSWORD_ERR": ErrorCode.JOIN_MEETING_FAILED,
    "MEETING_FAIL_SESSION_ERR": ErrorCode.JOIN_MEETING_FAILED,
    "MEETING_FAIL_MEETING_OVER": ErrorCode.JOIN_MEETING_FAILED,
    "MEETING_FAIL_MEETING_NOT_START": ErrorCode.JOIN_MEETING_FAILED,
    "MEETING_FAIL_MEETING_NOT_EXIST": ErrorCode.JOIN_MEETING_FAILED,
    "MEETING_FAIL_MEETING_USER_FULL": ErrorCode.JOIN_MEETING_FAILED,
    "MEETING_FAIL_CLIENT_INCOMPATIBLE": ErrorCode.JOIN_MEETING_FAILED,
    "MEETING_FAIL_CONFLOCKED": ErrorCode.JOIN_MEETING_FAILED,
    "MEETING_FAIL_MEETING_RESTRICTED": ErrorCode.JOIN_MEETING_FAILED,
    "MEETING_FAIL_JBH_DISABLED_BY_HOST": ErrorCode.JOIN_MEETING_FAILED,
    "MEETING_FAIL_UNKNOWN": ErrorCode.JOIN_MEETING_FAILED,
}

# EndMeetingReason: how a meeting that was joined came to an end.
END_REASONS: dict[str, tuple[MeetingStatus, ErrorCode]] = {
    "EndMeetingReason_None": (MeetingStatus.ENDED, ErrorCode.MEETING_ENDED),
    "EndMeetingReason_KickByHost": (MeetingStatus.ENDED, ErrorCode.MEETING_ENDED),
    "EndMeetingReason_EndByHost": (MeetingStatus.ENDED, ErrorCode.MEETING_ENDED),
    "EndMeetingReason_JBHTimeOut": (MeetingStatus.ENDED, ErrorCode.MEETING_ENDED),
    "EndMeetingReason_NoAttendee": (MeetingStatus.ENDED, ErrorCode.MEETING_ENDED),
    "EndMeetingReason_HostStartAnotherMeeting": (
        MeetingStatus.ENDED,
        ErrorCode.MEETING_ENDED,
    ),
    "EndMeetingReason_FreeMeetingTimeOut": (
        MeetingStatus.ENDED,
        ErrorCode.MEETING_ENDED,
    ),
    "EndMeetingReason_NetworkBroken": (MeetingStatus.FAILED, ErrorCode.JOIN_MEETING_FAILED),
}


def classify_auth_result(name: str) -> ErrorCode | None:
    """The error code for an ``AuthResult`` name; ``None`` for success."""
    return AUTH_RESULTS.get(name, ErrorCode.AUTH_FAILED)


def classify_join_failure(name: str) -> ErrorCode | None:
    """The error code for a ``MeetingFailCode`` name; ``None`` for success."""
    return JOIN_FAILURES.get(name, ErrorCode.JOIN_MEETING_FAILED)


def classify_end_reason(name: str) -> tuple[MeetingStatus, ErrorCode]:
    """The final status and code for an ``EndMeetingReason`` name."""
    return END_REASONS.get(name, (MeetingStatus.ENDED, ErrorCode.MEETING_ENDED))
