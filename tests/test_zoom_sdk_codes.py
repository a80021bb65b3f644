"""The SDK result table: successes, failures and the codes they map to.

Coverage against the installed binding's enums is in ``test_zoom_binding.py``.
"""

from __future__ import annotations

import pytest

from appliance.drivers import sdk_codes
from appliance.errors import ErrorCode
from appliance.status import MeetingStatus

pytestmark = pytest.mark.zoom


def test_success_maps_to_no_error_and_every_failure_to_an_error() -> None:
    for table in (
        sdk_codes.AUTH_RESULTS,
        sdk_codes.JOIN_FAILURES,
        sdk_codes.SDK_ERRORS,
        sdk_codes.RECORDING_REQUESTS,
    ):
        successes = {name for name, code in table.items() if code is None}
        assert len(successes) == 1
        assert all(
            isinstance(c, ErrorCode) for n, c in table.items() if n not in successes
        )


def test_auth_failures_are_auth_failed_except_an_incompatible_sdk() -> None:
    assert sdk_codes.classify_auth_result("AUTHRET_SUCCESS") is None
    assert sdk_codes.classify_auth_result("AUTHRET_UNKNOWN") is ErrorCode.AUTH_FAILED
    assert (
        sdk_codes.classify_auth_result("AUTHRET_CLIENT_INCOMPATIBLE")
        is ErrorCode.SDK_INIT_FAILED
    )
    assert sdk_codes.classify_auth_result("AUTHRET_FROM_THE_FUTURE") is (
        ErrorCode.AUTH_FAILED
    )


def test_end_reasons_end_the_meeting_and_a_broken_network_fails_it() -> None:
    for name, (status, code) in sdk_codes.END_REASONS.items():
        assert status.is_final
        if status is MeetingStatus.ENDED:
            assert code is ErrorCode.MEETING_ENDED, name
    assert sdk_codes.classify_end_reason("EndMeetingReason_KickByHost") == (
        MeetingStatus.ENDED,
        ErrorCode.MEETING_ENDED,
    )


def test_sdk_errors_depend_on_the_call_unless_the_sdk_is_broken() -> None:
    classify = sdk_codes.classify_sdk_error
    assert classify("SDKERR_SUCCESS", "Join") is None
    assert classify("SDKERR_INTERNAL_ERROR") is ErrorCode.SDK_INIT_FAILED
    assert classify("SDKERR_INTERNAL_ERROR", "SDKAuth") is ErrorCode.AUTH_FAILED
    assert classify("SDKERR_WRONG_USAGE", "Join") is ErrorCode.JOIN_MEETING_FAILED
    assert classify("SDKERR_UNINITIALIZE", "Join") is ErrorCode.SDK_INIT_FAILED


def test_every_appliance_status_but_failed_comes_from_one_sdk_status() -> None:
    mapped = {s for s in sdk_codes.MEETING_STATUSES.values() if s is not None}
    assert mapped == set(MeetingStatus)
    assert sdk_codes.map_meeting_status("MEETING_STATUS_LOCKED") is None


def test_messages_name_the_sdk_result() -> None:
    text = sdk_codes.describe("MEETING_FAIL_PASSWORD_ERR")
    assert text.startswith("MEETING_FAIL_PASSWORD_ERR (")
    assert sdk_codes.describe("SOMETHING_NEW") == "SOMETHING_NEW"
