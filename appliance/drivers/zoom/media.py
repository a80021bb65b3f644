"""What the bot does once it is in the meeting: permission, raw audio, shares, roster.

Theory of operation
-------------------
Raw data flows only while *raw recording* runs, and raw recording needs the local
recording privilege. :meth:`InMeeting.start` (on every ``INMEETING``, so after a
reconnect too) joins VoIP first (from SDK 6.3.5 on, raw audio stays silent without it)
and mutes the bot, announces who is present, then calls :meth:`ensure_recording`:

* ``CanStartRawRecording`` succeeds: ``StartRawRecording``, subscribe mixed, one-way
  and share audio through one audio delegate, and subscribe the I420 frames of every
  share already running;
* otherwise ask the host once with ``RequestLocalRecordingPrivilege``. The answer comes
  back as ``onLocalRecordingPrivilegeRequestStatus`` and ``onRecordPrivilegeChanged``;
  a grant retries, a refusal or no answer is reported as an error on the
  ``INMEETING`` status (the bot stays, in case the host changes their mind). When a
  host joins or the host changes, the bot asks again.

Shares: ``Sharing_Other_Share_Begin`` reports ``share_started`` and, while recording,
subscribes a renderer to the share source; ``Sharing_Other_Share_End`` unsubscribes
and reports ``share_stopped``. Reminder and disclaimer dialogs are accepted, after
which a recording start the disclaimer had blocked is retried.

Every object the SDK keeps a pointer to (event callbacks, delegates, renderers) is
held in an attribute here until :meth:`stop`, because the binding does not keep them
alive for us. All methods run on the driver thread, inside guarded callbacks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from appliance.drivers import sdk_codes
from appliance.drivers.base import DriverEvents
from appliance.drivers.zoom.adapters import AudioAdapter, ShareFrameAdapter
from appliance.drivers.zoom.guard import CallbackGuard
from appliance.errors import ErrorCode

logger = logging.getLogger(__name__)

ReportError = Callable[[ErrorCode | None, str], None]


def _name(value: Any) -> str:
    """The enum member name of an SDK result, or its repr for anything else."""
    return str(getattr(value, "name", value))


@dataclass
class _Share:
    user_id: int
    adapter: ShareFrameAdapter
    delegate: Any = None
    renderer: Any = None


class InMeeting:
    """The in-meeting half of the driver; see the module docstring."""

    def __init__(
        self,
        sdk: Any,
        meeting_service: Any,
        events: DriverEvents,
        guard: CallbackGuard,
        report_error: ReportError,
        meeting_id: str,
    ) -> None:
        self._sdk = sdk
        self._service = meeting_service
        self._events = events
        self._guard = guard
        self._report_error = report_error
        self._mid = meeting_id
        self._ok = sdk.SDKError.SDKERR_SUCCESS

        self._participants: Any = None
        self._recording_ctrl: Any = None
        self._audio_ctrl: Any = None
        self._share_ctrl: Any = None
        self._handlers: list[Any] = []

        self.my_user_id: int | None = None
        self.roster: dict[int, str] = {}
        self.recording = False
        self._asked = False
        self._error_shown = False
        self._audio_adapter = AudioAdapter(events)
        self._audio_delegate: Any = None
        self._audio_helper: Any = None
        self._shares: dict[int, _Share] = {}

    # -- lifecycle

    def start(self) -> None:
        """Set up everything for a fresh ``INMEETING``; idempotent across reconnects."""
        sdk, svc, wrap = self._sdk, self._service, self._guard.wrap
        self._participants = svc.GetMeetingParticipantsController()
        self._recording_ctrl = svc.GetMeetingRecordingController()
        self._audio_ctrl = svc.GetMeetingAudioController()
        self._share_ctrl = svc.GetMeetingShareController()

        participant_events = sdk.MeetingParticipantsCtrlEventCallbacks(
            onUserJoinCallback=wrap("onUserJoin", self.on_user_join),
            onUserLeftCallback=wrap("onUserLeft", self.on_user_left),
            onHostChangeNotificationCallback=wrap(
                "onHostChangeNotification", self.on_host_change
            ),
            onUserNamesChangedCallback=wrap("onUserNamesChanged", self.on_names),
        )
        recording_events = sdk.MeetingRecordingCtrlEventCallbacks(
            onRecordPrivilegeChangedCallback=wrap(
                "onRecordPrivilegeChanged", self.on_record_privilege
            ),
            onLocalRecordingPrivilegeRequestStatusCallback=wrap(
                "onLocalRecordingPrivilegeRequestStatus", self.on_request_status
            ),
        )
        share_events = sdk.MeetingShareCtrlEventCallbacks(
            onSharingStatusCallback=wrap("onSharingStatus", self.on_sharing_status),
        )
        self._handlers = [participant_events, recording_events, share_events]
        self._check(
            "participants SetEvent", self._participants.SetEvent(participant_events)
        )
        self._check(
            "recording SetEvent", self._recording_ctrl.SetEvent(recording_events)
        )
        self._check("share SetEvent", self._share_ctrl.SetEvent(share_events))

        me = self._participants.GetMySelfUser()
        self.my_user_id = int(me.GetUserID()) if me is not None else None
        self._join_audio()
        self._announce_present()
        self._announce_running_shares()
        self.ensure_recording("joined")

    def suspend(self) -> None:
        """Drop raw-data subscriptions while the SDK reconnects; :meth:`start` on the
        next ``INMEETING`` sets them up again."""
        self._unsubscribe_all()
        self.recording = False
        self._asked = False

    def stop(self) -> None:
        """Unsubscribe everything and report the end of running shares."""
        self._unsubscribe_all()
        for source_id in list(self._shares):
            share = self._shares.pop(source_id)
            self._events.share_stopped(share.user_id)
        if self.recording and self._recording_ctrl is not None:
            self._check("StopRawRecording", self._recording_ctrl.StopRawRecording())
        self.recording = False

    # -- audio and recording

    def _join_audio(self) -> None:
        err = self._audio_ctrl.JoinVoip()
        if err != self._ok:
            # Already joined through auto-join is the common reason; not fatal.
            logger.info("meeting %s: JoinVoip returned %s", self._mid, _name(err))
        if self.my_user_id is not None:
            err = self._audio_ctrl.MuteAudio(self.my_user_id, True)
            if err != self._ok:
                logger.info("meeting %s: muting the bot: %s", self._mid, _name(err))

    def ensure_recording(self, why: str) -> None:
        """Start raw recording now, or ask the host for the privilege (once)."""
        if self.recording:
            return
        ctrl = self._recording_ctrl
        can = ctrl.CanStartRawRecording()
        if can == self._ok:
            err = ctrl.StartRawRecording()
            if err != self._ok:
                self._error(
                    f"StartRawRecording failed: {sdk_codes.describe(_name(err))}"
                )
                return
            self.recording = True
            self._asked = False
            self._subscribe_audio()
            for source_id, share in self._shares.items():
                self._subscribe_share(source_id, share)
            logger.info("meeting %s: raw recording started (%s)", self._mid, why)
            if self._error_shown:
                self._error_shown = False
                self._report_error(None, "")
            return
        if self._asked:
            return
        self._asked = True
        err = ctrl.RequestLocalRecordingPrivilege()
        if err != self._ok:
            self._error(
                "cannot record: CanStartRawRecording returned "
                f"{_name(can)} and asking the host for the local recording privilege "
                f"failed with {_name(err)}"
            )
            return
        logger.info(
            "meeting %s: asked the host for the local recording privilege (%s; %s)",
            self._mid,
            why,
            _name(can),
        )

    def _subscribe_audio(self) -> None:
        wrap, adapter = self._guard.wrap, self._audio_adapter
        if self._audio_delegate is None:
            self._audio_delegate = self._sdk.ZoomSDKAudioRawDataDelegateCallbacks(
                onMixedAudioRawDataReceivedCallback=wrap("mixed audio", adapter.mixed),
                onOneWayAudioRawDataReceivedCallback=wrap(
                    "one-way audio", adapter.one_way
                ),
                onShareAudioRawDataReceivedCallback=wrap("share audio", adapter.share),
            )
        self._audio_helper = self._sdk.GetAudioRawdataHelper()
        if self._audio_helper is None:
            self._error("the SDK has no audio raw data helper")
            return
        err = self._audio_helper.subscribe(self._audio_delegate, False)
        if err != self._ok:
            self._error(f"subscribing to raw audio failed: {_name(err)}")

    def on_record_privilege(self, can_record: bool) -> None:
        logger.info("meeting %s: recording privilege now %s", self._mid, can_record)
        if can_record:
            self.ensure_recording("privilege granted")
        elif self.recording:
            self._unsubscribe_all()
            self.recording = False
            self._error("the host took the recording privilege back")

    def on_request_status(self, status: Any) -> None:
        name = _name(status)
        code = sdk_codes.RECORDING_REQUESTS.get(name, ErrorCode.JOIN_MEETING_FAILED)
        if code is None:
            self.ensure_recording("request granted")
        else:
            self._error(f"no recording permission: {sdk_codes.describe(name)}", code)

    def on_reminder_accepted(self) -> None:
        # A recording disclaimer may have blocked StartRawRecording; try again.
        self.ensure_recording("reminder accepted")

    # -- participants

    def _announce_present(self) -> None:
        for user_id in self._participants.GetParticipantsList() or []:
            self._joined(int(user_id))

    def _joined(self, user_id: int) -> None:
        if user_id == self.my_user_id or user_id in self.roster:
            return
        info = self._participants.GetUserByUserID(user_id)
        name = str(info.GetUserName()) if info is not None else ""
        self.roster[user_id] = name
        self._events.participant_joined(user_id, name)
        if info is not None and info.IsHost() and not self.recording:
            self._asked = False
            self.ensure_recording("the host joined")

    def on_user_join(self, user_ids: Any, _user_list: str) -> None:
        for user_id in user_ids or []:
            self._joined(int(user_id))

    def on_user_left(self, user_ids: Any, _user_list: str) -> None:
        for user_id in user_ids or []:
            uid = int(user_id)
            if uid == self.my_user_id or uid not in self.roster:
                continue
            self._events.participant_left(uid, self.roster.pop(uid))

    def on_names(self, user_ids: Any) -> None:
        for user_id in user_ids or []:
            uid = int(user_id)
            info = self._participants.GetUserByUserID(uid)
            if uid in self.roster and info is not None:
                self.roster[uid] = str(info.GetUserName())

    def on_host_change(self, user_id: int) -> None:
        logger.info("meeting %s: user %s is now host", self._mid, user_id)
        if not self.recording:
            self._asked = False
            self.ensure_recording("the host changed")

    # -- shares

    def _announce_running_shares(self) -> None:
        for user_id in self._share_ctrl.GetViewableSharingUserList() or []:
            for info in self._share_ctrl.GetSharingSourceInfoList(int(user_id)) or []:
                self._share_began(info)

    def on_sharing_status(self, info: Any) -> None:
        # Limitation: pausing and resuming a share is not reported; frames just stop
        # and start again while the share stays "started".
        status = _name(info.status)
        if status in ("Sharing_Other_Share_Begin", "Sharing_View_Other_Sharing"):
            self._share_began(info)
        elif status == "Sharing_Other_Share_End":
            self._share_ended(info)

    def _share_began(self, info: Any) -> None:
        user_id = int(info.userid)
        # SDK 6.x subscribes shares by source ID; 0 means an SDK that uses user IDs.
        source_id = int(info.shareSourceID) or user_id
        if source_id in self._shares or user_id == self.my_user_id:
            return
        share = _Share(user_id, ShareFrameAdapter(self._events, user_id))
        self._shares[source_id] = share
        self._events.share_started(user_id)
        if self.recording:
            self._subscribe_share(source_id, share)

    def _share_ended(self, info: Any) -> None:
        user_id = int(info.userid)
        source_id = int(info.shareSourceID) or user_id
        share = self._shares.pop(source_id, None)
        if share is None:
            return
        self._unsubscribe_share(share)
        self._events.share_stopped(share.user_id)

    def _subscribe_share(self, source_id: int, share: _Share) -> None:
        sdk, wrap = self._sdk, self._guard.wrap
        if share.renderer is not None:
            return
        share.delegate = sdk.ZoomSDKRendererDelegateCallbacks(
            onRawDataFrameReceivedCallback=wrap("share frame", share.adapter.frame),
        )
        share.renderer = sdk.createRenderer(share.delegate)
        if share.renderer is None:
            logger.warning("meeting %s: createRenderer failed", self._mid)
            return
        # Limitation: shares are always asked for at 720p; small text on a 4K screen
        # share may be unreadable in the frames.
        share.renderer.setRawDataResolution(
            sdk.ZoomSDKResolution.ZoomSDKResolution_720P
        )
        err = share.renderer.subscribe(
            source_id, sdk.ZoomSDKRawDataType.RAW_DATA_TYPE_SHARE
        )
        if err != self._ok:
            logger.warning(
                "meeting %s: subscribing to share %d of user %d failed: %s",
                self._mid,
                source_id,
                share.user_id,
                _name(err),
            )

    def _unsubscribe_share(self, share: _Share) -> None:
        if share.renderer is None:
            return
        self._check("renderer unSubscribe", share.renderer.unSubscribe())
        self._check("destroyRenderer", self._sdk.destroyRenderer(share.renderer))
        share.renderer = None

    def _unsubscribe_all(self) -> None:
        for share in self._shares.values():
            self._unsubscribe_share(share)
        if self._audio_helper is not None:
            self._check("audio unSubscribe", self._audio_helper.unSubscribe())
            self._audio_helper = None

    # -- helpers

    def _error(
        self, message: str, code: ErrorCode = ErrorCode.JOIN_MEETING_FAILED
    ) -> None:
        logger.warning("meeting %s: %s", self._mid, message)
        self._error_shown = True
        self._report_error(code, message)

    def _check(self, what: str, err: Any) -> None:
        if err != self._ok:
            logger.info("meeting %s: %s returned %s", self._mid, what, _name(err))
