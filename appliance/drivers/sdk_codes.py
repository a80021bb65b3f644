"""The one table from the Zoom SDK's result codes to the appliance's codes and statuses.

Both drivers report failures by the SDK's own enum member names (``AUTHRET_...``,
``MEETING_FAIL_...``, ``EndMeetingReason_...``, ``SDKERR_...``), so the simulated
driver fails exactly as the real one does, and the message a client sees always names
the SDK's result. This module is plain data keyed by those names and never imports the
SDK binding, so the simulated driver can use it on a host without the SDK; a test
checks that every member of the binding's ``AuthResult``, ``MeetingFailCode``,
``MeetingEndReason``, ``SDKError``, ``MeetingStatus`` and
``RequestLocalRecordingStatus`` has an entry.

A few entries carry names that older SDK releases used and the pinned binding no longer
exposes (see ``LEGACY_NAMES``); they stay so scenarios written against them keep
loading.
"""

from __future__ import annotations

from appliance.errors import ErrorCode
from appliance.status import MeetingStatus

_AUTH = ErrorCode.AUTH_FAILED
_INIT = ErrorCode.SDK_INIT_FAILED
_JOIN = ErrorCode.JOIN_MEETING_FAILED
_ENDED = (MeetingStatus.ENDED, ErrorCode.MEETING_ENDED)

# AuthResult: every failure of SDKAuth is AUTH_FAILED, except the ones that say the
# SDK itself is unusable on this host.
AUTH_RESULTS: dict[str, ErrorCode | None] = {
    "AUTHRET_SUCCESS": None,
    "AUTHRET_KEYORSECRETEMPTY": _AUTH,
    "AUTHRET_KEYORSECRETWRONG": _AUTH,
    "AUTHRET_ACCOUNTNOTSUPPORT": _AUTH,
    "AUTHRET_ACCOUNTNOTENABLESDK": _AUTH,
    "AUTHRET_UNKNOWN": _AUTH,
    "AUTHRET_SERVICE_BUSY": _AUTH,
    "AUTHRET_NONE": _AUTH,
    "AUTHRET_OVERTIME": _AUTH,
    "AUTHRET_NETWORKISSUE": _AUTH,
    "AUTHRET_CLIENT_INCOMPATIBLE": _INIT,
    "AUTHRET_JWTTOKENWRONG": _AUTH,
    "AUTHRET_LIMIT_EXCEEDED_EXCEPTION": _AUTH,
}

# MeetingFailCode (the iResult of MEETING_STATUS_FAILED): every failure to join is
# JOIN_MEETING_FAILED, tokens other than the SDK JWT included.
JOIN_FAILURES: dict[str, ErrorCode | None] = {
    "MEETING_SUCCESS": None,
    "MEETING_FAIL_CONNECTION_ERR": _JOIN,
    "MEETING_FAIL_NETWORK_ERR": _JOIN,
    "MEETING_FAIL_RECONNECT_ERR": _JOIN,
    "MEETING_FAIL_MMR_ERR": _JOIN,
    "MEETING_FAIL_PASSWORD_ERR": _JOIN,
    "MEETING_FAIL_SESSION_ERR": _JOIN,
    "MEETING_FAIL_MEETING_OVER": _JOIN,
    "MEETING_FAIL_MEETING_NOT_START": _JOIN,
    "MEETING_FAIL_MEETING_NOT_EXIST": _JOIN,
    "MEETING_FAIL_MEETING_USER_FULL": _JOIN,
    "MEETING_FAIL_CLIENT_INCOMPATIBLE": _JOIN,
    "MEETING_FAIL_NO_MMR": _JOIN,
    "MEETING_FAIL_CONFLOCKED": _JOIN,
    "MEETING_FAIL_MEETING_RESTRICTED": _JOIN,
    "MEETING_FAIL_MEETING_RESTRICTED_JBH": _JOIN,
    "MEETING_FAIL_JBH_DISABLED_BY_HOST": _JOIN,
    "MEETING_FAIL_CANNOT_EMIT_WEBREQUEST": _JOIN,
    "MEETING_FAIL_CANNOT_START_TOKENEXPIRE": _JOIN,
    "SESSION_VIDEO_ERR": _JOIN,
    "SESSION_AUDIO_AUTOSTARTERR": _JOIN,
    "MEETING_FAIL_REGISTERWEBINAR_FULL": _JOIN,
    "MEETING_FAIL_REGISTERWEBINAR_HOSTREGISTER": _JOIN,
    "MEETING_FAIL_REGISTERWEBINAR_PANELISTREGISTER": _JOIN,
    "MEETING_FAIL_REGISTERWEBINAR_DENIED_EMAIL": _JOIN,
    "MEETING_FAIL_ENFORCE_LOGIN": _JOIN,
    "CONF_FAIL_ZC_CERTIFICATE_CHANGED": _JOIN,
    "CONF_FAIL_VANITY_NOT_EXIST": _JOIN,
    "CONF_FAIL_JOIN_WEBINAR_WITHSAMEEMAIL": _JOIN,
    "CONF_FAIL_DISALLOW_HOST_MEETING": _JOIN,
    "MEETING_FAIL_WRITE_CONFIG_FILE": _JOIN,
    "MEETING_FAIL_FORBID_TO_JOIN_INTERNAL_MEETING": _JOIN,
    "CONF_FAIL_REMOVED_BY_HOST": _JOIN,
    "MEETING_FAIL_HOST_DISALLOW_OUTSIDE_USER_JOIN": _JOIN,
    "MEETING_FAIL_UNABLE_TO_JOIN_EXTERNAL_MEETING": _JOIN,
    "MEETING_FAIL_BLOCKED_BY_ACCOUNT_ADMIN": _JOIN,
    "MEETING_FAIL_NEED_SIGN_IN_FOR_PRIVATE_MEETING": _JOIN,
    "MEETING_FAIL_NEED_CONFIRM_PLINK": _JOIN,
    "MEETING_FAIL_NEED_INPUT_PLINK": _JOIN,
    "MEETING_FAIL_APP_PRIVILEGE_TOKEN_ERROR": _JOIN,
    "MEETING_FAIL_AUTHORIZED_USER_NOT_INMEETING": _JOIN,
    "MEETING_FAIL_ON_BEHALF_TOKEN_CONFLICT_LOGIN_ERROR": _JOIN,
    "MEETING_FAIL_USER_LEVEL_TOKEN_NOT_HAVE_HOST_ZAK_OBF": _JOIN,
    "MEETING_FAIL_APP_CAN_NOT_ANONYMOUS_JOIN_MEETING": _JOIN,
    "MEETING_FAIL_ON_BEHALF_TOKEN_INVALID": _JOIN,
    "MEETING_FAIL_ON_BEHALF_TOKEN_NOT_MATCH_MEETING": _JOIN,
    "MEETING_FAIL_JMAK_USER_EMAIL_NOT_MATCH": _JOIN,
    "MEETING_FAIL_UNKNOWN": _JOIN,
}

# MeetingEndReason (the iResult of MEETING_STATUS_ENDED): how a meeting that was
# joined came to an end. Only a broken network is a failure; the rest is the meeting
# (or the bot's part in it) ending the way meetings do.
END_REASONS: dict[str, tuple[MeetingStatus, ErrorCode]] = {
    "EndMeetingReason_None": _ENDED,
    "EndMeetingReason_KickByHost": _ENDED,
    "EndMeetingReason_EndByHost": _ENDED,
    "EndMeetingReason_JBHTimeOut": _ENDED,
    "EndMeetingReason_NoAttendee": _ENDED,
    "EndMeetingReason_HostStartAnotherMeeting": _ENDED,
    "EndMeetingReason_FreeMeetingTimeOut": _ENDED,
    "EndMeetingReason_Undefined": _ENDED,
    "EndMeetingReason_DueToAuthorizedUserLeave": _ENDED,
    "EndMeetingReason_NetworkBroken": (MeetingStatus.FAILED, _JOIN),
}

# SDKError, as returned by InitSDK: any failure means the SDK is unusable here. The
# same names come back from other calls; see classify_sdk_error for those.
SDK_ERRORS: dict[str, ErrorCode | None] = {
    "SDKERR_SUCCESS": None,
    **{
        name: _INIT
        for name in (
            "SDKERR_NO_IMPL",
            "SDKERR_WRONG_USAGE",
            "SDKERR_INVALID_PARAMETER",
            "SDKERR_MODULE_LOAD_FAILED",
            "SDKERR_MEMORY_FAILED",
            "SDKERR_SERVICE_FAILED",
            "SDKERR_UNINITIALIZE",
            "SDKERR_UNAUTHENTICATION",
            "SDKERR_NORECORDINGINPROCESS",
            "SDKERR_TRANSCODER_NOFOUND",
            "SDKERR_VIDEO_NOTREADY",
            "SDKERR_NO_PERMISSION",
            "SDKERR_UNKNOWN",
            "SDKERR_OTHER_SDK_INSTANCE_RUNNING",
            "SDKERR_INTERNAL_ERROR",
            "SDKERR_NO_AUDIODEVICE_ISFOUND",
            "SDKERR_NO_VIDEODEVICE_ISFOUND",
            "SDKERR_TOO_FREQUENT_CALL",
            "SDKERR_FAIL_ASSIGN_USER_PRIVILEGE",
            "SDKERR_MEETING_DONT_SUPPORT_FEATURE",
            "SDKERR_MEETING_NOT_SHARE_SENDER",
            "SDKERR_MEETING_YOU_HAVE_NO_SHARE",
            "SDKERR_MEETING_VIEWTYPE_PARAMETER_IS_WRONG",
            "SDKERR_MEETING_ANNOTATION_IS_OFF",
            "SDKERR_SETTING_OS_DONT_SUPPORT",
            "SDKERR_EMAIL_LOGIN_IS_DISABLED",
            "SDKERR_HARDWARE_NOT_MEET_FOR_VB",
            "SDKERR_NEED_USER_CONFIRM_RECORD_DISCLAIMER",
            "SDKERR_NO_SHARE_DATA",
            "SDKERR_SHARE_CANNOT_SUBSCRIBE_MYSELF",
            "SDKERR_NOT_IN_MEETING",
            "SDKERR_NOT_JOIN_AUDIO",
            "SDKERR_HARDWARE_DONT_SUPPORT",
            "SDKERR_DOMAIN_DONT_SUPPORT",
            "SDKERR_MEETING_REMOTE_CONTROL_IS_OFF",
            "SDKERR_FILETRANSFER_ERROR",
        )
    },
}

# SDKErrors that mean the SDK itself is broken, whichever call returned them.
_SDK_BROKEN = frozenset(
    {
        "SDKERR_NO_IMPL",
        "SDKERR_MODULE_LOAD_FAILED",
        "SDKERR_MEMORY_FAILED",
        "SDKERR_SERVICE_FAILED",
        "SDKERR_UNINITIALIZE",
        "SDKERR_OTHER_SDK_INSTANCE_RUNNING",
    }
)

# The code a failing synchronous call gets, by the call that failed.
_CALL_FAILURES: dict[str, ErrorCode] = {
    "InitSDK": _INIT,
    "SDKAuth": _AUTH,
    "Join": _JOIN,
}

# MeetingStatus (the SDK's) to the appliance's status; None means "not a status the
# appliance reports" (lock changes, webinar promotion, breakout rooms, ...).
MEETING_STATUSES: dict[str, MeetingStatus | None] = {
    "MEETING_STATUS_IDLE": MeetingStatus.IDLE,
    "MEETING_STATUS_CONNECTING": MeetingStatus.CONNECTING,
    "MEETING_STATUS_WAITINGFORHOST": MeetingStatus.WAITINGFORHOST,
    "MEETING_STATUS_INMEETING": MeetingStatus.INMEETING,
    "MEETING_STATUS_DISCONNECTING": MeetingStatus.DISCONNECTING,
    "MEETING_STATUS_RECONNECTING": MeetingStatus.RECONNECTING,
    "MEETING_STATUS_FAILED": MeetingStatus.FAILED,
    "MEETING_STATUS_ENDED": MeetingStatus.ENDED,
    "MEETING_STATUS_UNKNOWN": None,
    "MEETING_STATUS_LOCKED": None,
    "MEETING_STATUS_UNLOCKED": None,
    "MEETING_STATUS_IN_WAITING_ROOM": MeetingStatus.IN_WAITING_ROOM,
    "MEETING_STATUS_WEBINAR_PROMOTE": None,
    "MEETING_STATUS_WEBINAR_DEPROMOTE": None,
    "MEETING_STATUS_JOIN_BREAKOUT_ROOM": None,
    "MEETING_STATUS_LEAVE_BREAKOUT_ROOM": None,
}

# RequestLocalRecordingStatus: the host's answer to the bot asking for the local
# recording privilege. A refusal leaves the bot in the meeting without audio, which is
# reported as an error on the INMEETING status.
RECORDING_REQUESTS: dict[str, ErrorCode | None] = {
    "RequestLocalRecording_Granted": None,
    "RequestLocalRecording_Denied": _JOIN,
    "RequestLocalRecording_Timeout": _JOIN,
}

# Names above that the pinned binding (zoom-meeting-sdk 0.0.27) does not expose: older
# SDK releases used them.
LEGACY_NAMES = frozenset(
    {
        "MEETING_FAIL_NETWORK_ERR",
        "MEETING_FAIL_JBH_DISABLED_BY_HOST",
        "EndMeetingReason_NetworkBroken",
    }
)

# What an operator should read next to the SDK's name.
DESCRIPTIONS: dict[str, str] = {
    "AUTHRET_KEYORSECRETEMPTY": "the SDK key or secret is empty",
    "AUTHRET_KEYORSECRETWRONG": "the SDK key or secret is wrong",
    "AUTHRET_ACCOUNTNOTSUPPORT": "the account does not support the Meeting SDK",
    "AUTHRET_ACCOUNTNOTENABLESDK": "the account has not enabled the Meeting SDK",
    "AUTHRET_UNKNOWN": "unknown error (often: no route to Zoom)",
    "AUTHRET_SERVICE_BUSY": "Zoom's service is busy",
    "AUTHRET_NONE": "authentication did not complete",
    "AUTHRET_OVERTIME": "authentication timed out",
    "AUTHRET_NETWORKISSUE": "network problem",
    "AUTHRET_CLIENT_INCOMPATIBLE": "this SDK version is too old for Zoom",
    "AUTHRET_JWTTOKENWRONG": "the JWT was rejected (key, secret or clock)",
    "AUTHRET_LIMIT_EXCEEDED_EXCEPTION": "the account's SDK usage limit is exceeded",
    "MEETING_FAIL_CONNECTION_ERR": "cannot connect to the meeting",
    "MEETING_FAIL_NETWORK_ERR": "network error",
    "MEETING_FAIL_RECONNECT_ERR": "reconnecting failed",
    "MEETING_FAIL_PASSWORD_ERR": "wrong meeting passcode",
    "MEETING_FAIL_MEETING_OVER": "the meeting is over",
    "MEETING_FAIL_MEETING_NOT_START": "the meeting has not started",
    "MEETING_FAIL_MEETING_NOT_EXIST": "no such meeting",
    "MEETING_FAIL_MEETING_USER_FULL": "the meeting is full",
    "MEETING_FAIL_CLIENT_INCOMPATIBLE": "this SDK version is too old for the meeting",
    "MEETING_FAIL_CONFLOCKED": "the meeting is locked",
    "MEETING_FAIL_MEETING_RESTRICTED": "the meeting is restricted",
    "MEETING_FAIL_MEETING_RESTRICTED_JBH": "join before host is disabled",
    "MEETING_FAIL_JBH_DISABLED_BY_HOST": "join before host is disabled",
    "MEETING_FAIL_ENFORCE_LOGIN": "the meeting requires signed-in users",
    "CONF_FAIL_REMOVED_BY_HOST": "the host removed the bot earlier",
    "MEETING_FAIL_HOST_DISALLOW_OUTSIDE_USER_JOIN": "the host bars outside users",
    "MEETING_FAIL_UNABLE_TO_JOIN_EXTERNAL_MEETING": (
        "this app may not join meetings of other accounts"
    ),
    "MEETING_FAIL_BLOCKED_BY_ACCOUNT_ADMIN": "blocked by the account admin",
    "MEETING_FAIL_NEED_SIGN_IN_FOR_PRIVATE_MEETING": "the meeting needs a sign-in",
    "MEETING_FAIL_APP_PRIVILEGE_TOKEN_ERROR": "the join_token was rejected",
    "MEETING_FAIL_AUTHORIZED_USER_NOT_INMEETING": (
        "the user who authorised the bot (OBF token) is not in the meeting"
    ),
    "MEETING_FAIL_APP_CAN_NOT_ANONYMOUS_JOIN_MEETING": (
        "anonymous bots may not join: pass an OBF token, a ZAK or a join_token"
    ),
    "MEETING_FAIL_ON_BEHALF_TOKEN_INVALID": "the OBF token is invalid",
    "MEETING_FAIL_ON_BEHALF_TOKEN_NOT_MATCH_MEETING": (
        "the OBF token is for another meeting"
    ),
    "EndMeetingReason_None": "the bot left the meeting",
    "EndMeetingReason_KickByHost": "the host removed the bot from the meeting",
    "EndMeetingReason_EndByHost": "the host ended the meeting",
    "EndMeetingReason_JBHTimeOut": "the host did not join in time",
    "EndMeetingReason_NoAttendee": "the meeting ended with no attendees",
    "EndMeetingReason_HostStartAnotherMeeting": "the host started another meeting",
    "EndMeetingReason_FreeMeetingTimeOut": "the free meeting's time ran out",
    "EndMeetingReason_Undefined": "the meeting ended",
    "EndMeetingReason_DueToAuthorizedUserLeave": (
        "the user who authorised the bot left the meeting"
    ),
    "EndMeetingReason_NetworkBroken": "the network connection broke",
    "RequestLocalRecording_Denied": "the host refused the bot's recording request",
    "RequestLocalRecording_Timeout": "the host did not answer the recording request",
}


def classify_auth_result(name: str) -> ErrorCode | None:
    """The error code for an ``AuthResult`` name; ``None`` for success."""
    return AUTH_RESULTS.get(name, _AUTH)


def classify_join_failure(name: str) -> ErrorCode | None:
    """The error code for a ``MeetingFailCode`` name; ``None`` for success."""
    return JOIN_FAILURES.get(name, _JOIN)


def classify_end_reason(name: str) -> tuple[MeetingStatus, ErrorCode]:
    """The final status and code for an ``EndMeetingReason`` name."""
    return END_REASONS.get(name, _ENDED)


def classify_sdk_error(name: str, call: str = "InitSDK") -> ErrorCode | None:
    """The error code for an ``SDKError`` name returned by ``call``; ``None``: success.

    A broken SDK is SDK_INIT_FAILED whichever call noticed; otherwise the call decides
    (SDKAuth refusing the JWT outright is AUTH_FAILED, Join refusing is
    JOIN_MEETING_FAILED).
    """
    if name == "SDKERR_SUCCESS":
        return None
    if name in _SDK_BROKEN:
        return _INIT
    return _CALL_FAILURES.get(call, _INIT)


def map_meeting_status(name: str) -> MeetingStatus | None:
    """The appliance status for an SDK ``MeetingStatus`` name (``None``: ignore it)."""
    return MEETING_STATUSES.get(name)


def describe(name: str) -> str:
    """``NAME (what it means)`` for messages, or just ``NAME`` when nothing is known."""
    text = DESCRIPTIONS.get(name)
    return f"{name} ({text})" if text else name
