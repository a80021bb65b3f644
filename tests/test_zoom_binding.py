"""The driver uses the installed binding's real names, and the result table covers it.

The binding is inspected in a child process with a private ``HOME``: importing it
loads the SDK, which writes under ``$HOME`` and prints to fds 1 and 2 at exit, and
neither belongs in the test runner's process.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from appliance.drivers import sdk_codes
from appliance.errors import ErrorCode

pytestmark = [
    pytest.mark.zoom,
    pytest.mark.skipif(
        importlib.util.find_spec("zoom_meeting_sdk") is None,
        reason="the zoom extra (zoom_meeting_sdk) is not installed",
    ),
]

ZOOM_PKG = Path(__file__).resolve().parents[1] / "appliance" / "drivers" / "zoom"

ENUMS = {
    "AuthResult": sdk_codes.AUTH_RESULTS,
    "MeetingFailCode": sdk_codes.JOIN_FAILURES,
    "MeetingEndReason": sdk_codes.END_REASONS,
    "SDKError": sdk_codes.SDK_ERRORS,
    "MeetingStatus": sdk_codes.MEETING_STATUSES,
    "RequestLocalRecordingStatus": sdk_codes.RECORDING_REQUESTS,
}

# Methods the driver calls on binding objects, by the binding class that has them.
METHODS = {
    "IAuthService": ["SetEvent", "SDKAuth"],
    "IMeetingService": [
        "SetEvent",
        "Join",
        "Leave",
        "GetMeetingReminderController",
        "GetMeetingParticipantsController",
        "GetMeetingRecordingController",
        "GetMeetingAudioController",
        "GetMeetingShareController",
    ],
    "ISettingService": ["GetAudioSettings"],
    "IAudioSettingContext": ["EnableAutoJoinAudio"],
    "IMeetingReminderController": ["SetEvent"],
    "IMeetingReminderHandler": ["Accept"],
    "IMeetingReminderContent": ["GetTitle"],
    "IMeetingParticipantsController": [
        "SetEvent",
        "GetMySelfUser",
        "GetParticipantsList",
        "GetUserByUserID",
    ],
    "IUserInfo": ["GetUserID", "GetUserName", "IsHost"],
    "IMeetingRecordingController": [
        "SetEvent",
        "CanStartRawRecording",
        "StartRawRecording",
        "StopRawRecording",
        "RequestLocalRecordingPrivilege",
    ],
    "IMeetingAudioController": ["JoinVoip", "MuteAudio"],
    "IMeetingShareController": [
        "SetEvent",
        "GetViewableSharingUserList",
        "GetSharingSourceInfoList",
    ],
    "IZoomSDKAudioRawDataHelper": ["subscribe", "unSubscribe"],
    "IZoomSDKRenderer": ["setRawDataResolution", "subscribe", "unSubscribe"],
    "AudioRawData": ["GetBuffer", "GetBufferLen", "GetSampleRate", "GetChannelNum"],
    "YUVRawDataI420": [
        "GetStreamWidth",
        "GetStreamHeight",
        "GetBuffer",
        "GetBufferLen",
        "GetYBuffer",
        "GetUBuffer",
        "GetVBuffer",
    ],
}

# Attributes the driver sets or reads on binding value objects.
FIELDS = {
    "InitParam": ["strWebDomain", "emLanguageID", "enableLogByDefault"],
    "AuthContext": ["jwt_token"],
    "JoinParam": ["userType", "param"],
    "JoinParam4WithoutLogin": [
        "meetingNumber",
        "userName",
        "psw",
        "app_privilege_token",
        "onBehalfToken",
        "userZAK",
        "webinarToken",
        "isVideoOff",
        "isAudioOff",
        "isMyVoiceInMix",
        "isAudioRawDataStereo",
        "eAudioRawdataSamplingRate",
    ],
    "SharingSourceInfo": ["userid", "shareSourceID", "status"],
}

CHILD = r"""
import enum, inspect, json, sys
import zoom_meeting_sdk as z

wanted = json.loads(sys.argv[1])
facts = {"enums": {}, "attrs": {}, "docs": {}, "module": sorted(dir(z))}
for name in wanted["enums"]:
    facts["enums"][name] = sorted(getattr(z, name).__members__)
for name in wanted["classes"]:
    cls = getattr(z, name, None)
    facts["attrs"][name] = sorted(dir(cls)) if cls is not None else None
    init = getattr(cls, "__init__", None)
    facts["docs"][name] = (getattr(init, "__doc__", "") or "") if cls else ""
print("FACTS " + json.dumps(facts))
"""


@pytest.fixture(scope="module")
def binding(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from appliance.drivers.zoom.host_setup import prepare_sdk_home

    home = prepare_sdk_home(tmp_path_factory.mktemp("sdk-home"))
    classes = sorted({*METHODS, *FIELDS, *callback_classes_used()})
    wanted = json.dumps({"enums": sorted(ENUMS), "classes": classes})
    child = subprocess.run(
        [sys.executable, "-c", CHILD, wanted],
        env={**os.environ, "HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    line = next(x for x in child.stdout.splitlines() if x.startswith("FACTS "))
    return json.loads(line.removeprefix("FACTS "))


def driver_sources() -> str:
    return "\n".join(p.read_text() for p in sorted(ZOOM_PKG.glob("*.py")))


def callback_classes_used() -> set[str]:
    return set(re.findall(r"sdk\.(\w+Callbacks)\(", driver_sources()))


@pytest.mark.parametrize("enum_name", sorted(ENUMS))
def test_every_binding_enum_member_has_a_table_entry(
    binding: dict[str, Any], enum_name: str
) -> None:
    members = set(binding["enums"][enum_name])
    table = set(ENUMS[enum_name])
    assert members - table == set(), f"{enum_name}: not in sdk_codes"
    assert table - members - sdk_codes.LEGACY_NAMES == set(), f"{enum_name}: unknown"


def test_every_sdk_attribute_the_driver_uses_exists(binding: dict[str, Any]) -> None:
    used = set(re.findall(r"\bsdk\.(\w+)", driver_sources()))
    assert used, "the driver sources were not found"
    assert used - set(binding["module"]) == set()


def test_every_method_and_field_the_driver_uses_exists(
    binding: dict[str, Any],
) -> None:
    for cls, names in {**METHODS, **FIELDS}.items():
        attrs = binding["attrs"][cls]
        assert attrs is not None, f"the binding has no {cls}"
        assert set(names) - set(attrs) == set(), cls


def test_every_callback_keyword_the_driver_passes_exists(
    binding: dict[str, Any],
) -> None:
    source = driver_sources()
    calls = re.findall(r"sdk\.(\w+Callbacks)\((.*?)\n\s*\)", source, re.S)
    assert len(calls) >= 6
    for cls, args in calls:
        for keyword in re.findall(r"\b(on\w+)=", args):
            assert f"{keyword}:" in binding["docs"][cls], f"{cls}({keyword}=...)"


def test_create_driver_with_binding_and_credentials(tmp_path: Path) -> None:
    from appliance.drivers.zoom.host_setup import prepare_sdk_home

    home = prepare_sdk_home(tmp_path / "home")
    code = (
        "from appliance.drivers import load_driver; d = load_driver('zoom'); "
        "print(type(d).__name__, d.name)"
    )
    env = {
        **os.environ,
        "HOME": str(home),
        "ZOOM_SDK_KEY": "key",
        "ZOOM_SDK_SECRET": "secret-secret-secret-secret-secret",
    }
    child = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "ZoomDriver zoom" in child.stdout


def test_table_codes_are_error_codes() -> None:
    for table in (sdk_codes.AUTH_RESULTS, sdk_codes.JOIN_FAILURES):
        assert all(c is None or isinstance(c, ErrorCode) for c in table.values())
