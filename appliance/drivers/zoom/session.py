"""One run of the Zoom driver: the SDK from ``InitSDK`` to ``CleanUPSDK``.

Theory of operation
-------------------
:meth:`.driver.ZoomDriver.run` runs on the driver thread and does everything there,
because the SDK delivers callbacks only on the thread that initialised it and only
while that thread iterates GLib's default main context (see :mod:`.mainloop`). One
run is one :class:`Session`, which walks these steps, reporting ``CONNECTING`` at
once:

1. import the binding, check that it and :mod:`.mainloop` share one GLib, ``InitSDK``
   (failure: ``FAILED`` / ``SDK_INIT_FAILED`` naming the ``SDKERR_...``), create the
   auth, meeting and setting services and register the status and reminder callbacks;
2. ``SDKAuth`` with a fresh JWT, then iterate until ``onAuthenticationReturn``; a
   failing ``AUTHRET_...``, or no answer within ``auth_timeout_s``, is ``FAILED`` /
   ``AUTH_FAILED`` (with no route to Zoom the SDK answers ``AUTHRET_UNKNOWN`` after
   about 12 s);
3. ``Join`` without login (32 kHz mono raw audio asked for in the join parameters, the
   passcode and optional tokens from the :class:`JoinRequest`), then iterate until the
   meeting is over. SDK statuses map to appliance statuses through
   :mod:`appliance.drivers.sdk_codes`. ``CONNECTING`` or ``RECONNECTING`` for longer
   than ``connect_timeout_s`` is ``FAILED`` / ``JOIN_MEETING_FAILED`` (a wrong
   passcode can leave the SDK connecting forever); the waiting room and waiting for
   the host have no limit. ``INMEETING`` hands over to :class:`.media.InMeeting`;
4. ``request_leave`` (any thread) sets a flag and wakes the context; the loop calls
   ``Leave`` and waits up to ``leave_timeout_s`` for ``ENDED``.

Every iteration is bounded by ``_TICK_S`` so deadlines and the leave flag are checked
at least that often. Callbacks never act on the loop directly: they record what
happened (``_Stop``, the auth result) and the loop acts after the iteration returns,
outside the SDK's call stack. Every callback goes through :class:`.guard.CallbackGuard`.

Invariants: exactly one final status (``ENDED`` or ``FAILED``) is reported and nothing
follows it (:class:`.guard.GatedEvents` drops later events, such as audio still
arriving from an SDK thread); the SDK is cleaned up (services destroyed,
``CleanUPSDK``) before ``run`` returns; no secret is logged (tokens are only ever
logged as present/absent).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from appliance.drivers import sdk_codes
from appliance.drivers.base import JoinRequest
from appliance.drivers.zoom.auth import make_sdk_jwt
from appliance.drivers.zoom.guard import CallbackGuard, GatedEvents, stdout_muted
from appliance.drivers.zoom.mainloop import (
    GLibUnavailable,
    MainContext,
    mapped_glib_files,
)
from appliance.drivers.zoom.media import InMeeting
from appliance.errors import DriverUnavailable, ErrorCode
from appliance.status import MeetingStatus

if TYPE_CHECKING:
    from appliance.drivers.zoom.driver import ZoomDriver

logger = logging.getLogger(__name__)

# Upper bound on one GLib iteration: how late a deadline or leave flag can be seen.
_TICK_S = 0.25

_CONNECTING = frozenset({"MEETING_STATUS_CONNECTING", "MEETING_STATUS_RECONNECTING"})
_SETTLED = frozenset(
    {
        "MEETING_STATUS_WAITINGFORHOST",
        "MEETING_STATUS_IN_WAITING_ROOM",
        "MEETING_STATUS_INMEETING",
    }
)
_NOT_IN_MEETING = frozenset(
    {"MEETING_STATUS_IDLE", "MEETING_STATUS_ENDED", "MEETING_STATUS_FAILED"}
)


def _name(value: Any) -> str:
    return str(getattr(value, "name", value))


def _member_name(enum_type: Any, value: int) -> str:
    """The SDK's name for an integer result, e.g. ``MEETING_FAIL_PASSWORD_ERR``."""
    try:
        return str(enum_type(int(value)).name)
    except (ValueError, TypeError):
        return f"{getattr(enum_type, '__name__', 'result')}({value})"


class _Stop(Exception):
    """Ends a session with this final status."""

    def __init__(self, status: MeetingStatus, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class Session:
    """One run of the driver: the SDK from ``InitSDK`` to ``CleanUPSDK``."""

    def __init__(
        self, driver: ZoomDriver, request: JoinRequest, events: GatedEvents
    ) -> None:
        self.driver = driver
        self.request = request
        self.events = events
        self.mid = request.meeting_id
        self.guard = CallbackGuard(self._on_fatal)
        self.sdk: Any = None
        self.ctx: MainContext | None = None
        # Strings and callback objects the SDK holds raw pointers into: the binding
        # does not keep them alive, so they live here until CleanUPSDK.
        self.keep: list[Any] = []
        self.initialised = False
        self.auth_service: Any = None
        self.meeting_service: Any = None
        self.setting_service: Any = None
        self.media: InMeeting | None = None
        self.auth_result: Any = None
        self.stop: _Stop | None = None
        self.sdk_status = "MEETING_STATUS_IDLE"
        self.reported: MeetingStatus | None = None
        self.joining = False
        self.leave_sent = False
        self.was_in_meeting = False
        self.retry_recording = False
        self.deadline: float | None = None
        self.on_deadline: _Stop | None = None

    # -- the steps

    def execute(self) -> None:
        try:
            self._report(MeetingStatus.CONNECTING)
            self._prepare()
            self._init_sdk()
            self._authenticate()
            self._join()
            while True:
                self._iterate()
        except _Stop as stop:
            self._finish(stop)
        except Exception as exc:
            logger.exception("meeting %s: the zoom driver failed", self.mid)
            self._finish(
                _Stop(
                    MeetingStatus.FAILED,
                    ErrorCode.INTERNAL_ERROR,
                    f"the zoom driver failed: {type(exc).__name__}",
                )
            )
        finally:
            self._teardown()

    def _prepare(self) -> None:
        if self.driver.leave_requested:
            raise _Stop(
                MeetingStatus.ENDED,
                ErrorCode.MEETING_ENDED,
                "the bot left the meeting on request before joining",
            )
        try:
            self.sdk = self.driver._sdk_module()
            self.ctx = self.driver._context or MainContext.default()
        except (DriverUnavailable, GLibUnavailable) as exc:
            raise _Stop(
                MeetingStatus.FAILED, ErrorCode.SDK_INIT_FAILED, str(exc)
            ) from exc
        glibs = mapped_glib_files()
        if len(glibs) > 1:
            raise _Stop(
                MeetingStatus.FAILED,
                ErrorCode.SDK_INIT_FAILED,
                f"two copies of GLib are loaded ({', '.join(sorted(glibs))}); the "
                "SDK's callbacks would never arrive",
            )
        self.driver._attach(self.ctx)

    def _init_sdk(self) -> None:
        sdk, wrap = self.sdk, self.guard.wrap
        params = sdk.InitParam()
        params.strWebDomain = self._keep("https://zoom.us")
        params.emLanguageID = sdk.SDK_LANGUAGE_ID.LANGUAGE_English
        params.enableLogByDefault = False
        params.enableGenerateDump = False
        err = sdk.InitSDK(params)
        self._fail_unless_ok(err, "InitSDK", "InitSDK failed")
        self.initialised = True

        self.auth_service = sdk.CreateAuthService()
        self.meeting_service = sdk.CreateMeetingService()
        self.setting_service = sdk.CreateSettingService()
        if None in (self.auth_service, self.meeting_service, self.setting_service):
            raise _Stop(
                MeetingStatus.FAILED,
                ErrorCode.SDK_INIT_FAILED,
                "the SDK did not create its auth, meeting and setting services",
            )
        meeting_events = self._keep(
            sdk.MeetingServiceEventCallbacks(
                onMeetingStatusChangedCallback=wrap(
                    "onMeetingStatusChanged", self._on_status, fatal=True
                )
            )
        )
        self._check("meeting SetEvent", self.meeting_service.SetEvent(meeting_events))
        reminder_events = self._keep(
            sdk.MeetingReminderEventCallbacks(
                onReminderNotifyCallback=wrap("onReminderNotify", self._on_reminder)
            )
        )
        reminders = self.meeting_service.GetMeetingReminderController()
        if reminders is not None:
            self._check("reminder SetEvent", reminders.SetEvent(reminder_events))

    def _authenticate(self) -> None:
        sdk = self.sdk
        auth_events = self._keep(
            sdk.AuthServiceEventCallbacks(
                onAuthenticationReturnCallback=self.guard.wrap(
                    "onAuthenticationReturn", self._on_auth, fatal=True
                )
            )
        )
        self._check("auth SetEvent", self.auth_service.SetEvent(auth_events))
        context = sdk.AuthContext()
        token = make_sdk_jwt(self.driver._credentials)
        context.jwt_token = token
        err = self.auth_service.SDKAuth(context)
        self._fail_unless_ok(err, "SDKAuth", "SDK authentication failed")
        timeout = self.driver.auth_timeout_s
        self._set_deadline(
            timeout,
            _Stop(
                MeetingStatus.FAILED,
                ErrorCode.AUTH_FAILED,
                f"SDK authentication failed: no AuthResult within {timeout:g} s "
                "(is Zoom reachable?)",
            ),
        )
        while self.auth_result is None:
            self._iterate()
        # The context points into the token until the SDK has answered.
        del context, token
        self.deadline = None
        name = _name(self.auth_result)
        code = sdk_codes.classify_auth_result(name)
        if code is not None:
            raise _Stop(
                MeetingStatus.FAILED,
                code,
                f"SDK authentication failed: {sdk_codes.describe(name)}",
            )
        logger.info("meeting %s: SDK authenticated", self.mid)

    def _join(self) -> None:
        sdk, request = self.sdk, self.request
        try:
            number = int(request.meeting_id)
        except ValueError:
            raise _Stop(
                MeetingStatus.FAILED,
                ErrorCode.INVALID_MEETING_ID,
                f"meeting ID {request.meeting_id!r} is not a number",
            ) from None
        audio = self.setting_service.GetAudioSettings()
        if audio is not None:
            self._check("EnableAutoJoinAudio", audio.EnableAutoJoinAudio(True))

        join = self._keep(sdk.JoinParam())
        join.userType = sdk.SDKUserType.SDK_UT_WITHOUT_LOGIN
        param = join.param
        param.meetingNumber = number
        param.userName = self._keep(request.display_name or "Meeting Bot")
        if request.password:
            param.psw = self._keep(request.password)
        tokens = {
            "app_privilege_token": request.join_token,
            "onBehalfToken": request.obf_token,
            "userZAK": request.zak_token,
            "webinarToken": request.webinar_token,
        }
        for field, value in tokens.items():
            if value:
                setattr(param, field, self._keep(value))
        # Limitation: personal link names (vanityID) and the SDK's own join_token
        # parameter are not offered; the meeting number is required.
        param.isVideoOff = True
        param.isAudioOff = False
        param.isMyVoiceInMix = False
        param.isAudioRawDataStereo = False
        param.eAudioRawdataSamplingRate = (
            sdk.AudioRawdataSamplingRate.AudioRawdataSamplingRate_32K
        )
        logger.info(
            "meeting %s: joining as %r; tokens given: %s",
            self.mid,
            request.display_name,
            ", ".join(f for f, v in tokens.items() if v) or "none",
        )
        # The binding prints every join parameter, passcode and tokens included.
        with stdout_muted():
            err = self.meeting_service.Join(join)
        self._fail_unless_ok(err, "Join", "joining the meeting failed")
        self.joining = True
        self._connecting_deadline()

    # -- the loop

    def _iterate(self) -> None:
        assert self.ctx is not None
        self.ctx.iterate(_TICK_S)
        if self.stop is not None:
            raise self.stop
        if self.driver.leave_requested and not self.leave_sent:
            self._begin_leave()
        if self.retry_recording and self.media is not None:
            self.retry_recording = False
            try:
                self.media.ensure_recording("reminder accepted")
            except Exception as exc:
                logger.exception("meeting %s: starting raw recording failed", self.mid)
                self._report_media_error(
                    ErrorCode.INTERNAL_ERROR,
                    f"starting raw recording failed: {type(exc).__name__}",
                )
        if self.deadline is not None and time.monotonic() >= self.deadline:
            assert self.on_deadline is not None
            raise self.on_deadline

    def _begin_leave(self) -> None:
        self.leave_sent = True
        left = _Stop(
            MeetingStatus.ENDED,
            ErrorCode.MEETING_ENDED,
            "the bot left the meeting on request (EndMeetingReason_None)",
        )
        if not self.joining or self.sdk_status in _NOT_IN_MEETING:
            raise left
        logger.info("meeting %s: leaving on request", self.mid)
        self._report(MeetingStatus.DISCONNECTING)
        err = self.meeting_service.Leave(self.sdk.LeaveMeetingCmd.LEAVE_MEETING)
        if err != self.sdk.SDKError.SDKERR_SUCCESS:
            logger.warning("meeting %s: Leave returned %s", self.mid, _name(err))
            raise left
        left.message += (
            f" (the SDK did not confirm within {self.driver.leave_timeout_s:g} s)"
        )
        self._set_deadline(self.driver.leave_timeout_s, left)

    def _connecting_deadline(self) -> None:
        if self.leave_sent:
            return
        timeout = self.driver.connect_timeout_s
        self._set_deadline(
            timeout,
            _Stop(
                MeetingStatus.FAILED,
                ErrorCode.JOIN_MEETING_FAILED,
                f"joining the meeting failed: still {self.sdk_status} after "
                f"{timeout:g} s (a wrong passcode can leave the SDK connecting "
                "forever)",
            ),
        )

    def _set_deadline(self, seconds: float, stop: _Stop) -> None:
        self.deadline = time.monotonic() + seconds
        self.on_deadline = stop

    # -- callbacks (driver thread, inside GLib dispatch)

    def _on_auth(self, result: Any) -> None:
        logger.info("meeting %s: onAuthenticationReturn %s", self.mid, _name(result))
        if self.auth_result is None:
            self.auth_result = result

    def _on_status(self, status: Any, result: int) -> None:
        name = _name(status)
        self.sdk_status = name
        logger.info("meeting %s: %s (%s)", self.mid, name, result)
        if name == "MEETING_STATUS_FAILED":
            reason = _member_name(self.sdk.MeetingFailCode, result)
            code = (
                sdk_codes.classify_join_failure(reason) or ErrorCode.JOIN_MEETING_FAILED
            )
            if self.was_in_meeting:
                what = "the meeting connection failed"
            else:
                what = "joining the meeting failed"
            self._stop_once(
                _Stop(
                    MeetingStatus.FAILED, code, f"{what}: {sdk_codes.describe(reason)}"
                )
            )
            return
        if name == "MEETING_STATUS_ENDED":
            reason = _member_name(self.sdk.MeetingEndReason, result)
            final, code = sdk_codes.classify_end_reason(reason)
            message = sdk_codes.describe(reason)
            if self.leave_sent:
                message = f"the bot left the meeting on request ({reason})"
            self._stop_once(_Stop(final, code, message))
            return
        if not self.leave_sent:
            if name in _CONNECTING:
                self._connecting_deadline()
            elif name in _SETTLED:
                self.deadline = None
        if name == "MEETING_STATUS_RECONNECTING" and self.media is not None:
            self.media.suspend()
        # Limitation: breakout rooms are not followed. When the host moves the bot
        # into one, MEETING_STATUS_JOIN_BREAKOUT_ROOM is only logged and raw data
        # follows whatever the SDK delivers there.
        mapped = sdk_codes.map_meeting_status(name)
        if mapped is not None:
            self._report(mapped)
        if name == "MEETING_STATUS_INMEETING":
            self.was_in_meeting = True
            self._start_media()

    def _start_media(self) -> None:
        if self.media is None:
            self.media = InMeeting(
                self.sdk,
                self.meeting_service,
                self.events,
                self.guard,
                self._report_media_error,
                self.mid,
            )
        try:
            self.media.start()
        except Exception as exc:
            logger.exception("meeting %s: setting up raw data failed", self.mid)
            self._report_media_error(
                ErrorCode.INTERNAL_ERROR,
                f"setting up raw data failed: {type(exc).__name__}",
            )

    def _on_reminder(self, content: Any, handler: Any) -> None:
        title = content.GetTitle() if content is not None else ""
        err = handler.Accept() if handler is not None else None
        logger.info("meeting %s: accepted reminder %r: %s", self.mid, title, _name(err))
        self.retry_recording = True

    def _on_fatal(self, name: str, exc: BaseException) -> None:
        self._stop_once(
            _Stop(
                MeetingStatus.FAILED,
                ErrorCode.INTERNAL_ERROR,
                f"the zoom driver failed in SDK callback {name}: {type(exc).__name__}",
            )
        )

    def _stop_once(self, stop: _Stop) -> None:
        if self.stop is None:
            self.stop = stop

    # -- reporting and cleanup

    def _report(self, status: MeetingStatus) -> None:
        if status != self.reported:
            self.reported = status
            self.events.status(status)

    def _report_media_error(self, code: ErrorCode | None, message: str) -> None:
        # The bot stays in the meeting; the error rides on the INMEETING status until
        # a later success clears it.
        if self.reported == MeetingStatus.INMEETING:
            self.events.status(MeetingStatus.INMEETING, code, message)

    def _finish(self, stop: _Stop) -> None:
        if self.media is not None:
            try:
                self.media.stop()
            except Exception:
                logger.exception("meeting %s: stopping raw data failed", self.mid)
        log = logger.info if stop.status == MeetingStatus.ENDED else logger.warning
        log(
            "meeting %s: %s %s: %s", self.mid, stop.status, stop.code.name, stop.message
        )
        self.events.status(stop.status, stop.code, stop.message)

    def _teardown(self) -> None:
        if not self.events.closed:
            self.events.status(
                MeetingStatus.FAILED,
                ErrorCode.INTERNAL_ERROR,
                "the zoom driver ended without a final status",
            )
        try:
            self._leave_if_still_in()
        except Exception:
            logger.exception("meeting %s: leaving during cleanup failed", self.mid)
        sdk = self.sdk
        for destroy, service in (
            ("DestroyMeetingService", self.meeting_service),
            ("DestroySettingService", self.setting_service),
            ("DestroyAuthService", self.auth_service),
        ):
            if service is not None:
                try:
                    self._check(destroy, getattr(sdk, destroy)(service))
                except Exception:
                    logger.exception("meeting %s: %s failed", self.mid, destroy)
        if self.initialised:
            try:
                self._check("CleanUPSDK", sdk.CleanUPSDK())
            except Exception:
                logger.exception("meeting %s: CleanUPSDK failed", self.mid)
        self.driver._attach(None)
        self.keep.clear()

    def _leave_if_still_in(self) -> None:
        """After a failure while joined, leave before destroying the services."""
        if not self.joining or self.leave_sent or self.sdk_status in _NOT_IN_MEETING:
            return
        assert self.ctx is not None
        self.leave_sent = True
        self.meeting_service.Leave(self.sdk.LeaveMeetingCmd.LEAVE_MEETING)
        deadline = time.monotonic() + self.driver.leave_timeout_s
        while self.sdk_status not in _NOT_IN_MEETING and time.monotonic() < deadline:
            self.ctx.iterate(_TICK_S)

    def _keep(self, value: Any) -> Any:
        self.keep.append(value)
        return value

    def _fail_unless_ok(self, err: Any, call: str, what: str) -> None:
        if err == self.sdk.SDKError.SDKERR_SUCCESS:
            return
        name = _name(err)
        code = sdk_codes.classify_sdk_error(name, call) or ErrorCode.SDK_INIT_FAILED
        raise _Stop(
            MeetingStatus.FAILED,
            code,
            f"{what}: {call} returned {sdk_codes.describe(name)}",
        )

    def _check(self, what: str, err: Any) -> None:
        if err != self.sdk.SDKError.SDKERR_SUCCESS:
            logger.info("meeting %s: %s returned %s", self.mid, what, _name(err))
