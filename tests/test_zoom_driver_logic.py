"""The ZoomDriver's session logic against a scripted stand-in for the SDK binding.

No live meeting can be joined from here, so everything after authentication is
exercised with a fake binding that has the real one's names (``test_zoom_binding.py``
checks those names against the installed binding). The fake main context runs the
test's scripted callbacks on the driver thread, inside ``iterate``, exactly where the
real SDK delivers them.
"""

from __future__ import annotations

import enum
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from appliance.drivers.base import AudioType, JoinRequest
from appliance.drivers.zoom.auth import SDKCredentials
from appliance.drivers.zoom.driver import ZoomDriver
from appliance.errors import ErrorCode
from appliance.status import MeetingStatus

pytestmark = pytest.mark.zoom

SECRET = "a-secret-long-enough-for-hs256-keys!"


# -- the fake binding ---------------------------------------------------------------


class SDKError(enum.Enum):
    SDKERR_SUCCESS = 0
    SDKERR_WRONG_USAGE = 2
    SDKERR_UNINITIALIZE = 7
    SDKERR_NO_PERMISSION = 12
    SDKERR_INTERNAL_ERROR = 15


OK = SDKError.SDKERR_SUCCESS
AuthResult = enum.Enum("AuthResult", "AUTHRET_SUCCESS AUTHRET_JWTTOKENWRONG")
Status = enum.Enum(
    "MeetingStatus",
    "MEETING_STATUS_IDLE MEETING_STATUS_CONNECTING MEETING_STATUS_WAITINGFORHOST "
    "MEETING_STATUS_INMEETING MEETING_STATUS_DISCONNECTING "
    "MEETING_STATUS_RECONNECTING MEETING_STATUS_FAILED MEETING_STATUS_ENDED "
    "MEETING_STATUS_IN_WAITING_ROOM MEETING_STATUS_LOCKED",
)
MeetingFailCode = enum.IntEnum(
    "MeetingFailCode", {"MEETING_SUCCESS": 0, "MEETING_FAIL_PASSWORD_ERR": 4}
)
MeetingEndReason = enum.IntEnum(
    "MeetingEndReason",
    {
        "EndMeetingReason_None": 0,
        "EndMeetingReason_KickByHost": 1,
        "EndMeetingReason_EndByHost": 2,
    },
)
RecordingRequest = enum.Enum(
    "RequestLocalRecordingStatus",
    "RequestLocalRecording_Granted RequestLocalRecording_Denied "
    "RequestLocalRecording_Timeout",
)
SharingStatus = enum.Enum(
    "SharingStatus", "Sharing_Other_Share_Begin Sharing_Other_Share_End"
)


class Callbacks:
    """Any of the binding's ``*Callbacks`` classes: keeps the keyword callbacks."""

    def __init__(self, **callbacks: Callable[..., None]) -> None:
        self.kw = callbacks


@dataclass
class User:
    uid: int
    name: str
    host: bool = False

    def GetUserID(self) -> int:
        return self.uid

    def GetUserName(self) -> str:
        return self.name

    def IsHost(self) -> bool:
        return self.host


class Recorder:
    """Records every call made on it, and answers from ``answers``."""

    def __init__(self, **answers: Any) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.answers = answers
        self.event: Any = None

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("__"):
            raise AttributeError(name)

        def call(*args: Any) -> Any:
            self.calls.append((name, args))
            if name == "SetEvent":
                self.event = args[0]
            answer = self.answers.get(name, OK)
            return answer(*args) if callable(answer) else answer

        return call

    def called(self, name: str) -> list[tuple[Any, ...]]:
        return [args for n, args in self.calls if n == name]


class FakeSDK:
    """The parts of ``zoom_meeting_sdk`` the driver touches, scripted by tests."""

    SDKError = SDKError
    MeetingFailCode = MeetingFailCode
    MeetingEndReason = MeetingEndReason
    SDK_LANGUAGE_ID = SimpleNamespace(LANGUAGE_English="en")
    SDKUserType = SimpleNamespace(SDK_UT_WITHOUT_LOGIN="without-login")
    AudioRawdataSamplingRate = SimpleNamespace(AudioRawdataSamplingRate_32K="32k")
    LeaveMeetingCmd = SimpleNamespace(LEAVE_MEETING="leave")
    ZoomSDKRawDataType = SimpleNamespace(RAW_DATA_TYPE_SHARE="share")
    ZoomSDKResolution = SimpleNamespace(ZoomSDKResolution_720P="720p")
    InitParam = SimpleNamespace
    AuthContext = SimpleNamespace
    AuthServiceEventCallbacks = Callbacks
    MeetingServiceEventCallbacks = Callbacks
    MeetingReminderEventCallbacks = Callbacks
    MeetingParticipantsCtrlEventCallbacks = Callbacks
    MeetingRecordingCtrlEventCallbacks = Callbacks
    MeetingShareCtrlEventCallbacks = Callbacks
    ZoomSDKAudioRawDataDelegateCallbacks = Callbacks
    ZoomSDKRendererDelegateCallbacks = Callbacks

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.init_result = OK
        self.users = {1: User(1, "Bot"), 2: User(2, "Ada", host=True), 3: User(3, "Bo")}
        self.present = [1, 2]
        self.auth = Recorder()
        self.participants = Recorder(
            GetMySelfUser=lambda: self.users[1],
            GetParticipantsList=lambda: list(self.present),
            GetUserByUserID=lambda uid: self.users.get(uid),
        )
        self.recording = Recorder()
        self.audio_ctrl = Recorder()
        self.share_ctrl = Recorder(
            GetViewableSharingUserList=list, GetSharingSourceInfoList=lambda uid: []
        )
        self.reminders = Recorder()
        self.settings_audio = Recorder()
        self.settings = Recorder(GetAudioSettings=lambda: self.settings_audio)
        self.meeting = Recorder(
            GetMeetingReminderController=lambda: self.reminders,
            GetMeetingParticipantsController=lambda: self.participants,
            GetMeetingRecordingController=lambda: self.recording,
            GetMeetingAudioController=lambda: self.audio_ctrl,
            GetMeetingShareController=lambda: self.share_ctrl,
        )
        self.audio_helper = Recorder()
        self.renderers: list[Recorder] = []
        self.fd1_during_join: str | None = None

    def JoinParam(self) -> SimpleNamespace:
        return SimpleNamespace(userType=None, param=SimpleNamespace())

    def InitSDK(self, params: Any) -> SDKError:
        self.calls.append("InitSDK")
        return self.init_result

    def CreateAuthService(self) -> Recorder:
        return self.auth

    def CreateMeetingService(self) -> Recorder:
        return self.meeting

    def CreateSettingService(self) -> Recorder:
        return self.settings

    def GetAudioRawdataHelper(self) -> Recorder:
        return self.audio_helper

    def createRenderer(self, delegate: Callbacks) -> Recorder:
        renderer = Recorder()
        renderer.delegate = delegate
        self.renderers.append(renderer)
        return renderer

    def destroyRenderer(self, renderer: Recorder) -> SDKError:
        self.calls.append("destroyRenderer")
        return OK

    def DestroyMeetingService(self, service: Any) -> SDKError:
        self.calls.append("DestroyMeetingService")
        return OK

    def DestroySettingService(self, service: Any) -> SDKError:
        self.calls.append("DestroySettingService")
        return OK

    def DestroyAuthService(self, service: Any) -> SDKError:
        self.calls.append("DestroyAuthService")
        return OK

    def CleanUPSDK(self) -> SDKError:
        self.calls.append("CleanUPSDK")
        return OK

    # What the SDK would call back; run on the driver thread via FakeContext.
    def status(self, name: str, result: int = 0) -> None:
        self.meeting.event.kw["onMeetingStatusChangedCallback"](Status[name], result)

    def auth_returns(self, name: str) -> None:
        self.auth.event.kw["onAuthenticationReturnCallback"](AuthResult[name])


class FakeContext:
    """Runs the test's scripted callbacks inside ``iterate``, on the driver thread."""

    def __init__(self) -> None:
        self.actions: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self.thread: str | None = None

    def iterate(self, timeout: float | None) -> None:
        self.thread = threading.current_thread().name
        try:
            action = self.actions.get(timeout=timeout)
        except queue.Empty:
            return
        if action is not None:
            action()

    def wakeup(self) -> None:
        self.actions.put(None)

    def soon(self, action: Callable[[], None]) -> None:
        self.actions.put(action)


@dataclass
class Events:
    log: list[tuple[Any, ...]] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def _add(self, *entry: Any) -> None:
        with self.changed:
            self.log.append(entry)
            self.changed.notify_all()

    def status(self, status: MeetingStatus, error_code: Any = None, message: str = ""):
        self._add("status", status, error_code, message)

    def participant_joined(self, user_id: int, name: str) -> None:
        self._add("joined", user_id, name)

    def participant_left(self, user_id: int, name: str) -> None:
        self._add("left", user_id, name)

    def audio(self, audio_type: AudioType, user_id: int, capture_ns: int, pcm: Any):
        self._add("audio", audio_type, user_id, bytes(pcm))

    def share_started(self, user_id: int) -> None:
        self._add("share_started", user_id)

    def share_stopped(self, user_id: int) -> None:
        self._add("share_stopped", user_id)

    def share_frame(self, user_id: int, capture_ns: int, w: int, h: int, i420: Any):
        self._add("share_frame", user_id, w, h, len(i420))

    def wait_for(self, predicate: Callable[[tuple[Any, ...]], bool]) -> tuple:
        with self.changed:
            ok = self.changed.wait_for(
                lambda: any(predicate(e) for e in self.log), timeout=10
            )
        assert ok, f"not seen; got {self.log}"
        return next(e for e in self.log if predicate(e))

    def statuses(self) -> list[tuple[Any, ...]]:
        return [e[1:] for e in self.log if e[0] == "status"]


@dataclass
class Harness:
    sdk: FakeSDK
    ctx: FakeContext
    driver: ZoomDriver
    events: Events
    thread: threading.Thread

    def finish(self) -> tuple[Any, ...]:
        self.thread.join(10)
        assert not self.thread.is_alive()
        return self.events.statuses()[-1]


@pytest.fixture
def start() -> Iterator[Callable[..., Harness]]:
    harnesses: list[Harness] = []

    def start(
        request: JoinRequest | None = None,
        sdk: FakeSDK | None = None,
        **timeouts: float,
    ) -> Harness:
        sdk = sdk or FakeSDK()
        ctx = FakeContext()
        timeouts.setdefault("leave_timeout_s", 0.5)
        driver = ZoomDriver(
            SDKCredentials("key", SECRET), sdk=sdk, context=ctx, **timeouts
        )  # type: ignore[arg-type]
        events = Events()
        request = request or JoinRequest("12345678901", password="pw")
        thread = threading.Thread(
            target=driver.run, args=(request, events), name="driver", daemon=True
        )
        thread.start()
        harness = Harness(sdk, ctx, driver, events, thread)
        harnesses.append(harness)
        return harness

    yield start
    for harness in harnesses:
        harness.driver.request_leave()
        harness.thread.join(10)


def authenticated(h: Harness) -> None:
    """Answer SDKAuth with success once the driver has called it."""
    deadline = time.monotonic() + 10
    while not h.sdk.auth.called("SDKAuth"):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    h.ctx.soon(lambda: h.sdk.auth_returns("AUTHRET_SUCCESS"))


def joined(h: Harness) -> None:
    authenticated(h)
    deadline = time.monotonic() + 10
    while not h.sdk.meeting.called("Join"):
        assert time.monotonic() < deadline
        time.sleep(0.01)


@dataclass
class Audio:
    pcm: bytes

    def GetBuffer(self) -> bytes:
        return self.pcm

    def GetBufferLen(self) -> int:
        return len(self.pcm)

    def GetSampleRate(self) -> int:
        return 32000

    def GetChannelNum(self) -> int:
        return 1


# -- the tests --------------------------------------------------------------------


def test_join_parameters_tokens_and_a_muted_stdout(start: Callable) -> None:
    request = JoinRequest(
        "98765432101",
        password="pass-1",
        display_name="Notes",
        join_token="app-priv",
        obf_token="obf",
        zak_token="zak",
        webinar_token="web",
    )
    h = start(request)

    def join(param: Any) -> SDKError:
        h.sdk.fd1_during_join = os.readlink("/proc/self/fd/1")
        return OK

    h.sdk.meeting.answers["Join"] = join
    joined(h)
    (jp,) = h.sdk.meeting.called("Join")[0]
    p = jp.param
    assert jp.userType == "without-login"
    assert (p.meetingNumber, p.userName, p.psw) == (98765432101, "Notes", "pass-1")
    assert (p.app_privilege_token, p.onBehalfToken, p.userZAK, p.webinarToken) == (
        "app-priv",
        "obf",
        "zak",
        "web",
    )
    assert p.eAudioRawdataSamplingRate == "32k"
    assert p.isAudioRawDataStereo is False
    assert h.sdk.fd1_during_join == "/dev/null"
    assert os.readlink("/proc/self/fd/1") != "/dev/null"
    assert h.sdk.settings_audio.called("EnableAutoJoinAudio") == [(True,)]
    # The JWT went to SDKAuth; the fake key/secret made it.
    (context,) = h.sdk.auth.called("SDKAuth")[0]
    assert context.jwt_token.count(".") == 2
    assert h.ctx.thread == "driver"


def test_a_meeting_from_join_to_end_by_host(start: Callable) -> None:
    h = start()
    joined(h)
    sdk, ctx, ev = h.sdk, h.ctx, h.events
    ctx.soon(lambda: sdk.status("MEETING_STATUS_CONNECTING"))
    ctx.soon(lambda: sdk.status("MEETING_STATUS_INMEETING"))
    ev.wait_for(lambda e: e[:2] == ("joined", 2))
    assert sdk.audio_ctrl.called("JoinVoip") == [()]
    assert sdk.audio_ctrl.called("MuteAudio") == [(1, True)]
    assert sdk.recording.called("StartRawRecording") == [()]
    delegate = sdk.audio_helper.called("subscribe")[0][0]

    pcm = b"\x01\x02" * 320
    ctx.soon(lambda: delegate.kw["onMixedAudioRawDataReceivedCallback"](Audio(pcm)))
    ctx.soon(lambda: delegate.kw["onOneWayAudioRawDataReceivedCallback"](Audio(pcm), 2))
    ctx.soon(lambda: sdk.participants.event.kw["onUserJoinCallback"]([3], ""))
    share = SimpleNamespace(
        status=SharingStatus.Sharing_Other_Share_Begin, userid=3, shareSourceID=77
    )
    ctx.soon(lambda: sdk.share_ctrl.event.kw["onSharingStatusCallback"](share))
    ev.wait_for(lambda e: e[0] == "share_started")
    renderer = sdk.renderers[0]
    assert renderer.called("subscribe") == [(77, "share")]
    frame = SimpleNamespace(
        GetStreamWidth=lambda: 4,
        GetStreamHeight=lambda: 2,
        GetBufferLen=lambda: 12,
        GetBuffer=lambda: bytes(12),
    )
    ctx.soon(lambda: renderer.delegate.kw["onRawDataFrameReceivedCallback"](frame))
    ended = SimpleNamespace(
        status=SharingStatus.Sharing_Other_Share_End, userid=3, shareSourceID=77
    )
    ctx.soon(lambda: sdk.share_ctrl.event.kw["onSharingStatusCallback"](ended))
    ctx.soon(lambda: sdk.participants.event.kw["onUserLeftCallback"]([3], ""))
    ctx.soon(
        lambda: sdk.status(
            "MEETING_STATUS_ENDED", MeetingEndReason.EndMeetingReason_EndByHost
        )
    )
    final = h.finish()

    assert final[:2] == (MeetingStatus.ENDED, ErrorCode.MEETING_ENDED)
    assert "EndMeetingReason_EndByHost" in final[2]
    kinds = [e[:3] if e[0] != "audio" else e for e in ev.log]
    assert kinds == [
        ("status", MeetingStatus.CONNECTING, None),
        ("status", MeetingStatus.INMEETING, None),
        ("joined", 2, "Ada"),
        ("audio", AudioType.MIXED, 0, pcm),
        ("audio", AudioType.ONE_WAY, 2, pcm),
        ("joined", 3, "Bo"),
        ("share_started", 3),
        ("share_frame", 3, 4),
        ("share_stopped", 3),
        ("left", 3, "Bo"),
        ("status", MeetingStatus.ENDED, ErrorCode.MEETING_ENDED),
    ]
    assert renderer.called("unSubscribe") == [()]
    assert sdk.calls[-4:] == [
        "DestroyMeetingService",
        "DestroySettingService",
        "DestroyAuthService",
        "CleanUPSDK",
    ]


def test_wrong_passcode_fails_with_the_sdks_code(start: Callable) -> None:
    h = start()
    joined(h)
    h.ctx.soon(
        lambda: h.sdk.status(
            "MEETING_STATUS_FAILED", MeetingFailCode.MEETING_FAIL_PASSWORD_ERR
        )
    )
    status, code, message = h.finish()
    assert (status, code) == (MeetingStatus.FAILED, ErrorCode.JOIN_MEETING_FAILED)
    assert "MEETING_FAIL_PASSWORD_ERR" in message


def test_stuck_connecting_times_out_and_leaves(start: Callable) -> None:
    h = start(connect_timeout_s=0.3, leave_timeout_s=0.3)
    joined(h)
    h.ctx.soon(lambda: h.sdk.status("MEETING_STATUS_CONNECTING"))
    status, code, message = h.finish()
    assert (status, code) == (MeetingStatus.FAILED, ErrorCode.JOIN_MEETING_FAILED)
    assert "MEETING_STATUS_CONNECTING" in message
    assert h.sdk.meeting.called("Leave") == [("leave",)]


def test_waiting_room_has_no_time_limit(start: Callable) -> None:
    h = start(connect_timeout_s=0.2)
    joined(h)
    h.ctx.soon(lambda: h.sdk.status("MEETING_STATUS_IN_WAITING_ROOM"))
    h.events.wait_for(lambda e: e[1:2] == (MeetingStatus.IN_WAITING_ROOM,))
    time.sleep(0.6)
    assert h.thread.is_alive()
    h.driver.request_leave()
    h.ctx.soon(
        lambda: h.sdk.status(
            "MEETING_STATUS_ENDED", MeetingEndReason.EndMeetingReason_None
        )
    )
    status, code, message = h.finish()
    assert (status, code) == (MeetingStatus.ENDED, ErrorCode.MEETING_ENDED)
    assert "on request" in message


def test_leave_in_meeting_waits_for_the_sdk_then_ends(start: Callable) -> None:
    h = start()
    joined(h)
    h.sdk.meeting.answers["Leave"] = lambda cmd: h.ctx.soon(
        lambda: h.sdk.status("MEETING_STATUS_ENDED", 0)
    )
    h.ctx.soon(lambda: h.sdk.status("MEETING_STATUS_INMEETING"))
    h.events.wait_for(lambda e: e[1:2] == (MeetingStatus.INMEETING,))
    h.driver.request_leave()
    status, code, _ = h.finish()
    assert (status, code) == (MeetingStatus.ENDED, ErrorCode.MEETING_ENDED)
    assert [s[0] for s in h.events.statuses()][-2:] == [
        MeetingStatus.DISCONNECTING,
        MeetingStatus.ENDED,
    ]
    assert h.sdk.audio_helper.called("unSubscribe") == [()]
    assert h.sdk.recording.called("StopRawRecording") == [()]


def test_leave_the_sdk_never_confirms_still_ends(start: Callable) -> None:
    h = start(leave_timeout_s=0.3)
    joined(h)
    h.ctx.soon(lambda: h.sdk.status("MEETING_STATUS_INMEETING"))
    h.events.wait_for(lambda e: e[1:2] == (MeetingStatus.INMEETING,))
    h.driver.request_leave()
    status, code, message = h.finish()
    assert (status, code) == (MeetingStatus.ENDED, ErrorCode.MEETING_ENDED)
    assert "did not confirm" in message


def test_refused_recording_is_an_error_and_a_new_host_is_asked_again(
    start: Callable,
) -> None:
    sdk = FakeSDK()
    sdk.recording.answers["CanStartRawRecording"] = SDKError.SDKERR_NO_PERMISSION
    h = start(sdk=sdk)
    joined(h)
    h.ctx.soon(lambda: sdk.status("MEETING_STATUS_INMEETING"))
    h.events.wait_for(lambda e: e[:2] == ("joined", 2))
    assert len(sdk.recording.called("RequestLocalRecordingPrivilege")) == 1
    assert sdk.recording.called("StartRawRecording") == []

    denied = RecordingRequest.RequestLocalRecording_Denied
    h.ctx.soon(
        lambda: sdk.recording.event.kw[
            "onLocalRecordingPrivilegeRequestStatusCallback"
        ](denied)
    )
    _, status, code, message = h.events.wait_for(
        lambda e: e[0] == "status" and e[2] is not None
    )
    assert (status, code) == (MeetingStatus.INMEETING, ErrorCode.JOIN_MEETING_FAILED)
    assert "RequestLocalRecording_Denied" in message

    h.ctx.soon(lambda: sdk.participants.event.kw["onHostChangeNotificationCallback"](3))
    h.ctx.soon(lambda: None)
    deadline = time.monotonic() + 5
    while len(sdk.recording.called("RequestLocalRecordingPrivilege")) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.01)

    sdk.recording.answers["CanStartRawRecording"] = OK
    h.ctx.soon(lambda: sdk.recording.event.kw["onRecordPrivilegeChangedCallback"](True))
    h.events.wait_for(
        lambda e: e[0] == "status" and e[2] is None and len(h.events.statuses()) > 3
    )
    assert sdk.recording.called("StartRawRecording") == [()]
    assert h.events.statuses()[-1] == (MeetingStatus.INMEETING, None, "")


def test_a_raising_callback_is_contained(start: Callable) -> None:
    sdk = FakeSDK()
    h = start(sdk=sdk)
    joined(h)
    h.ctx.soon(lambda: sdk.status("MEETING_STATUS_INMEETING"))
    h.events.wait_for(lambda e: e[:2] == ("joined", 2))

    def broken(uid: int) -> User:
        raise RuntimeError("boom")

    sdk.participants.answers["GetUserByUserID"] = broken
    h.ctx.soon(lambda: sdk.participants.event.kw["onUserJoinCallback"]([3], ""))
    h.ctx.soon(lambda: sdk.status("MEETING_STATUS_ENDED", 2))
    status, code, _ = h.finish()
    # A participant callback failing does not end the meeting; the SDK ending it does.
    assert (status, code) == (MeetingStatus.ENDED, ErrorCode.MEETING_ENDED)


def test_a_raising_status_callback_fails_the_meeting(start: Callable) -> None:
    h = start()
    joined(h)

    class Weird:
        @property
        def name(self) -> str:
            raise RuntimeError("boom")

    h.ctx.soon(
        lambda: h.sdk.meeting.event.kw["onMeetingStatusChangedCallback"](Weird(), 0)
    )
    status, code, message = h.finish()
    assert (status, code) == (MeetingStatus.FAILED, ErrorCode.INTERNAL_ERROR)
    assert "onMeetingStatusChanged" in message


def test_init_failure_is_sdk_init_failed_naming_the_sdk_error(start: Callable) -> None:
    sdk = FakeSDK()
    sdk.init_result = SDKError.SDKERR_UNINITIALIZE
    status, code, message = start(sdk=sdk).finish()
    assert (status, code) == (MeetingStatus.FAILED, ErrorCode.SDK_INIT_FAILED)
    assert "SDKERR_UNINITIALIZE" in message
    # Nothing to clean up after a failed InitSDK.
    assert sdk.calls == ["InitSDK"]


def test_jwt_refused_outright_or_later_is_auth_failed(start: Callable) -> None:
    sdk = FakeSDK()
    sdk.auth.answers["SDKAuth"] = SDKError.SDKERR_INTERNAL_ERROR
    status, code, message = start(sdk=sdk).finish()
    assert (status, code) == (MeetingStatus.FAILED, ErrorCode.AUTH_FAILED)
    assert "SDKERR_INTERNAL_ERROR" in message

    h = start()
    deadline = time.monotonic() + 10
    while not h.sdk.auth.called("SDKAuth"):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    h.ctx.soon(lambda: h.sdk.auth_returns("AUTHRET_JWTTOKENWRONG"))
    status, code, message = h.finish()
    assert (status, code) == (MeetingStatus.FAILED, ErrorCode.AUTH_FAILED)
    assert "AUTHRET_JWTTOKENWRONG" in message


def test_no_auth_answer_times_out(start: Callable) -> None:
    status, code, message = start(auth_timeout_s=0.3).finish()
    assert (status, code) == (MeetingStatus.FAILED, ErrorCode.AUTH_FAILED)
    assert "no AuthResult" in message


def test_nothing_is_reported_after_the_final_status(start: Callable) -> None:
    h = start()
    joined(h)
    h.ctx.soon(lambda: h.sdk.status("MEETING_STATUS_INMEETING"))
    h.events.wait_for(lambda e: e[:2] == ("joined", 2))
    delegate = h.sdk.audio_helper.called("subscribe")[0][0]
    h.ctx.soon(lambda: h.sdk.status("MEETING_STATUS_ENDED", 1))
    h.finish()
    # Audio arriving late from an SDK thread is dropped, not reported.
    delegate.kw["onMixedAudioRawDataReceivedCallback"](Audio(b"\x00\x00" * 320))
    assert h.events.log[-1][1] is MeetingStatus.ENDED


def test_reconnecting_drops_and_renews_the_raw_data_subscriptions(
    start: Callable,
) -> None:
    h = start()
    joined(h)
    sdk = h.sdk
    h.ctx.soon(lambda: sdk.status("MEETING_STATUS_INMEETING"))
    h.events.wait_for(lambda e: e[:2] == ("joined", 2))
    h.ctx.soon(lambda: sdk.status("MEETING_STATUS_RECONNECTING"))
    h.events.wait_for(lambda e: e[1:2] == (MeetingStatus.RECONNECTING,))
    assert sdk.audio_helper.called("unSubscribe") == [()]
    h.ctx.soon(lambda: sdk.status("MEETING_STATUS_INMEETING"))
    h.ctx.soon(lambda: sdk.status("MEETING_STATUS_ENDED", 2))
    status, _, _ = h.finish()
    assert status is MeetingStatus.ENDED
    assert len(sdk.recording.called("StartRawRecording")) == 2
    assert len(sdk.audio_helper.called("subscribe")) == 2
    # Everyone present was announced once, not again after the reconnect.
    assert [e for e in h.events.log if e[0] == "joined"] == [("joined", 2, "Ada")]


def test_leave_requested_before_run_never_starts_the_sdk() -> None:
    sdk = FakeSDK()
    driver = ZoomDriver(
        SDKCredentials("key", SECRET),
        sdk=sdk,
        context=FakeContext(),  # type: ignore[arg-type]
    )
    driver.request_leave()
    events = Events()
    driver.run(JoinRequest("12345678901"), events)
    assert [s[0] for s in events.statuses()] == [
        MeetingStatus.CONNECTING,
        MeetingStatus.ENDED,
    ]
    assert sdk.calls == []
