"""Meetings on this appliance: their state, and the task that runs each one's worker.

Theory of operation
-------------------
:class:`MeetingRegistry` is the one owner of meetings. ``start`` validates a join
request, records the meeting as ``MEETING_STATUS_CONNECTING`` and starts
:meth:`MeetingRegistry._run_meeting` in the meetings nursery; it returns at once (join
is asynchronous). That task starts the worker, sends ``JOIN``, and then turns every
frame from the worker into state (status, participants, stats), audio on the bus, and
calls to the observers (plugins).

A meeting ends in one of three ways, and each leaves a final status:

* the driver reports ``ENDED`` or ``FAILED`` and the worker exits;
* ``leave`` (REST DELETE, or shutdown) sends ``LEAVE``; if the worker does not exit
  within the leave timeout it is terminated, then killed;
* the worker dies: the socket reaches EOF without a final status, and the meeting
  becomes ``FAILED`` with ``WORKER_DIED`` naming how the process ended.

Then the bus is closed (every WebSocket client gets an ``error`` message and a close)
and ``finished`` is set. A finished meeting stays listed until DELETE removes it or a
new POST replaces it.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import time
import urllib.parse
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import trio

from appliance.bus.audio_bus import MeetingAudio
from appliance.config import Settings
from appliance.drivers.base import AudioType, JoinRequest
from appliance.errors import (
    ApplianceError,
    ErrorCode,
    InvalidMeetingID,
    InvalidRequest,
    MeetingAlreadyExists,
    MeetingNotFound,
)
from appliance.protocol import codec
from appliance.status import MeetingStatus
from appliance.supervisor.workers import WorkerHandle, WorkerPool, describe_exit

log = logging.getLogger(__name__)
worker_log = logging.getLogger("appliance.worker.remote")

_MEETING_ID = re.compile(r"\d{9,11}")
_URL_ID = re.compile(r"/(?:j|w|s|wc|wc/join)/(\d{9,11})(?:/|$)")
GOLDEN_FRACTION = 0.6180339887
DIRECT_READ_BYTES = 64 * 1024
READ_BYTES = 64 * 1024
NOWAIT_READ_LIMIT = 16 * 1024 * 1024
JOIN_FIELDS = {
    "meeting_id",
    "password",
    "display_name",
    "join_token",
    "obf_token",
    "zak_token",
    "webinar_token",
    "scenario",
    "plugins",
}


def parse_meeting_id(value: Any) -> str:
    """A meeting number of 9 to 11 digits, from digits (spaces and dashes allowed) or a
    Zoom join URL such as ``https://zoom.us/j/85012345678?pwd=...``."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise InvalidMeetingID("meeting_id must be a string of 9 to 11 digits")
    text = value.strip()
    if "://" in text:
        match = _URL_ID.search(urllib.parse.urlsplit(text).path)
        if match:
            return match.group(1)
        raise InvalidMeetingID(f"no meeting number in the URL {text!r}")
    digits = re.sub(r"[\s-]", "", text)
    if not _MEETING_ID.fullmatch(digits):
        raise InvalidMeetingID(f"meeting_id must be 9 to 11 digits, got {value!r}")
    return digits


def parse_join_request(body: Any, driver: str) -> JoinRequest:
    """Validate a POST body into a :class:`JoinRequest`."""
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object")
    unknown = set(body) - JOIN_FIELDS
    if unknown:
        raise InvalidRequest(f"unknown fields: {', '.join(sorted(unknown))}")
    if "meeting_id" not in body:
        raise InvalidMeetingID("meeting_id is required")
    meeting_id = parse_meeting_id(body["meeting_id"])
    for name in JOIN_FIELDS - {"meeting_id", "plugins"}:
        if body.get(name) is not None and not isinstance(body[name], str):
            raise InvalidRequest(f"{name} must be a string")
    # Per-meeting plugin settings; the plugin manager checks names and values.
    plugins = body.get("plugins")
    if plugins is not None and not (
        isinstance(plugins, dict) and all(isinstance(v, dict) for v in plugins.values())
    ):
        raise InvalidRequest(
            "plugins must map plugin names to objects, such as "
            '{"recorder": {"enabled": false}}'
        )
    scenario = body.get("scenario")
    if scenario is not None:
        if driver != "sim":
            raise InvalidRequest("scenario is only read by the sim driver")
        # Fail at POST, not later in the worker, when the scenario is unusable; and
        # hand the worker an absolute path, since it runs in a folder of its own.
        from appliance.drivers.sim.scenario import load_scenario

        loaded = load_scenario(scenario)
        if loaded.path is not None and ("/" in scenario or scenario.endswith(".toml")):
            scenario = str(loaded.path)
    return JoinRequest(
        meeting_id=meeting_id,
        password=body.get("password") or "",
        display_name=body.get("display_name") or "Meeting Bot",
        join_token=body.get("join_token"),
        obf_token=body.get("obf_token"),
        zak_token=body.get("zak_token"),
        webinar_token=body.get("webinar_token"),
        scenario=scenario,
        options={"plugins": plugins} if plugins else {},
    )


class MeetingObserver(Protocol):
    """Who else hears of a meeting's life (the plugin manager). Called on the loop."""

    def check_request(self, request: JoinRequest) -> None:
        """Refuse a join request (raise InvalidRequest) before its meeting starts."""

    def meeting_status(self, meeting: Meeting) -> None: ...

    def participant(
        self, meeting: Meeting, user_id: int, name: str, joined: bool
    ) -> None: ...

    def audio_frame(self, meeting: Meeting, frame: codec.Audio) -> None: ...

    def share_state(self, meeting: Meeting, user_id: int, started: bool) -> None: ...

    def share_frame(self, meeting: Meeting, frame: codec.ShareFrame) -> None: ...

    def meeting_removed(self, meeting: Meeting) -> None: ...


@dataclass
class MeetingStats:
    frames_received: int = 0
    bytes_received: int = 0
    mixed_frames: int = 0
    one_way_frames: int = 0
    share_audio_frames: int = 0
    share_frames_received: int = 0
    share_bytes_received: int = 0
    worker_dropped_frames: int = 0
    join_ms: float | None = None


@dataclass
class Meeting:
    request: JoinRequest
    audio: MeetingAudio
    number: int
    status: MeetingStatus = MeetingStatus.CONNECTING
    error: ApplianceError | None = None
    participants: dict[int, str] = field(default_factory=dict)
    sharing_user: int | None = None
    stats: MeetingStats = field(default_factory=MeetingStats)
    worker_pid: int | None = None
    created_monotonic: float = field(default_factory=time.monotonic)
    leave_requested: trio.Event = field(default_factory=trio.Event)
    finished: trio.Event = field(default_factory=trio.Event)

    @property
    def meeting_id(self) -> str:
        return self.request.meeting_id

    def summary(self) -> dict[str, Any]:
        return {"meeting_id": self.meeting_id, "status": str(self.status)}

    def detail(self) -> dict[str, Any]:
        stats = asdict(self.stats)
        stats["ws_clients"] = self.audio.subscriber_count
        stats["frames_dropped"] = self.audio.frames_dropped
        return {
            "meeting_id": self.meeting_id,
            "status": str(self.status),
            "error": self.error.to_dict() if self.error else None,
            "stats": stats,
            "participants": [
                {"user_id": user_id, "name": name}
                for user_id, name in sorted(self.participants.items())
            ],
            "sharing_user_id": self.sharing_user,
            "worker_pid": self.worker_pid,
        }


class MeetingRegistry:
    """Owns every meeting and the task running its worker."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._meetings: dict[str, Meeting] = {}
        self._nursery: trio.Nursery | None = None
        self._numbers = itertools.count(1)
        self._accepting = True
        self.observers: list[MeetingObserver] = []
        self.pool = WorkerPool(
            settings.driver,
            settings.data_dir / "workers",
            spares=settings.spare_workers,
            exit_grace=settings.leave_timeout,
        )

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """The meetings nursery; cancelling it kills workers, so leave_all first."""
        async with trio.open_nursery() as nursery:
            await nursery.start(self.pool.run)
            self._nursery = nursery
            task_status.started()
            await trio.sleep_forever()

    # -- queries -----------------------------------------------------------------

    def get(self, meeting_id: str) -> Meeting:
        meeting = self._meetings.get(meeting_id.strip())
        if meeting is None:
            raise MeetingNotFound(f"no meeting {meeting_id} on this appliance")
        return meeting

    def all(self) -> Iterable[Meeting]:
        return list(self._meetings.values())

    # -- commands ----------------------------------------------------------------

    def start(self, body: Any) -> Meeting:
        """Validate a join request and start its worker; returns at once."""
        request = parse_join_request(body, self.settings.driver)
        for observer in self.observers:
            observer.check_request(request)
        if not self._accepting or self._nursery is None:
            raise ApplianceError("the appliance is shutting down")
        existing = self._meetings.get(request.meeting_id)
        if existing is not None:
            # A bot that reached its final status may still be exiting; the new
            # one starts beside it, in a work folder of its own.
            if not existing.status.is_final:
                raise MeetingAlreadyExists(
                    f"a bot is already in meeting {request.meeting_id} here"
                )
            self._forget(existing)
        running = sum(1 for m in self._meetings.values() if not m.finished.is_set())
        if running >= self.settings.max_meetings:
            raise InvalidRequest(
                f"this appliance runs at most {self.settings.max_meetings} meetings"
            )
        number = next(self._numbers)
        window = self.settings.ws_window
        meeting = Meeting(
            request=request,
            audio=MeetingAudio(
                request.meeting_id,
                window=window,
                heartbeat_interval=self.settings.ws_heartbeat_interval,
                # Spread meetings' windows evenly over the window (golden ratio), so
                # a thousand clients are not all written to at the same instant.
                phase=(number * GOLDEN_FRACTION % 1.0) * window,
            ),
            number=number,
        )
        self._meetings[request.meeting_id] = meeting
        self._nursery.start_soon(self._run_meeting, meeting)
        log.info("meeting starting meeting_id=%s", meeting.meeting_id)
        return meeting

    async def leave(self, meeting_id: str) -> None:
        """Leave a meeting (if its bot is still in it) and remove it."""
        meeting = self.get(meeting_id)
        meeting.leave_requested.set()
        with trio.move_on_after(self.settings.leave_timeout + 10):
            await meeting.finished.wait()
        if not meeting.finished.is_set():
            log.error("meeting did not finish meeting_id=%s", meeting.meeting_id)
        self._forget(meeting)

    async def leave_all(self) -> None:
        """Stop accepting meetings; leave every meeting and wait for its worker."""
        self._accepting = False
        meetings = [m for m in self._meetings.values() if not m.finished.is_set()]
        log.info("leaving every meeting count=%d", len(meetings))
        for meeting in meetings:
            meeting.leave_requested.set()
        self.pool.close_spares()
        with trio.move_on_after(self.settings.leave_timeout + 10):
            for meeting in meetings:
                await meeting.finished.wait()

    def _forget(self, meeting: Meeting) -> None:
        if self._meetings.get(meeting.meeting_id) is meeting:
            del self._meetings[meeting.meeting_id]
            for observer in self.observers:
                observer.meeting_removed(meeting)

    # -- the task of one meeting -------------------------------------------------

    async def _run_meeting(self, meeting: Meeting) -> None:
        returncode: int | None = None
        try:
            worker = await self.pool.lease(meeting.meeting_id)
            try:
                meeting.worker_pid = worker.pid
                await self._speak_with(meeting, worker.handle, worker.work_dir)
            finally:
                worker.released.set()
                with trio.CancelScope(shield=True):
                    await worker.gone.wait()
            returncode = worker.returncode
        except (OSError, trio.BrokenResourceError, codec.ProtocolError) as exc:
            log.error("worker failed meeting_id=%s error=%r", meeting.meeting_id, exc)
            if not meeting.status.is_final:
                self._set_status(
                    meeting,
                    MeetingStatus.FAILED,
                    ApplianceError(f"worker failed: {exc}", code=ErrorCode.WORKER_DIED),
                )
        finally:
            with trio.CancelScope(shield=True):
                if not meeting.status.is_final:
                    how = describe_exit(returncode)
                    self._set_status(
                        meeting,
                        MeetingStatus.FAILED,
                        ApplianceError(
                            f"worker pid {meeting.worker_pid} {how} while "
                            f"{meeting.status}",
                            code=ErrorCode.WORKER_DIED,
                        ),
                    )
                error = meeting.error or ApplianceError(
                    "the bot left the meeting", code=ErrorCode.MEETING_ENDED
                )
                meeting.audio.close(
                    error.code.name, error.message, error.code.close_code
                )
                meeting.finished.set()
                log.info(
                    "meeting finished meeting_id=%s status=%s",
                    meeting.meeting_id,
                    meeting.status,
                )

    async def _speak_with(
        self, meeting: Meeting, worker: WorkerHandle, work_dir: Path
    ) -> None:
        params = asdict(meeting.request)
        params["home"] = str(work_dir / "home")
        await worker.send(codec.Join(params))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(meeting.audio.run)
            nursery.start_soon(self._leave_when_asked, meeting, worker)
            self._handle_events(meeting, worker)
            while True:
                audio = meeting.audio
                if audio.paced and not worker.decoder.has_partial_frame:
                    # See the audio bus: one wake-up per window, not per frame.
                    await trio.sleep_until(audio.next_read(trio.current_time()))
                else:
                    await trio.lowlevel.wait_readable(worker.stream.socket)
                more = self._read_nowait(worker)
                self._handle_events(meeting, worker)
                if audio.paced:
                    audio.close_due(trio.current_time())
                if not more:
                    break
            nursery.cancel_scope.cancel()
        if worker.decoder.has_partial_frame:
            log.warning("worker stopped mid-frame meeting_id=%s", meeting.meeting_id)

    @staticmethod
    def _read_nowait(worker: WorkerHandle) -> bool:
        """Feed the decoder what the worker's socket holds, without waiting.

        Returns false at EOF. Stops after ``NOWAIT_READ_LIMIT`` bytes, so a worker
        that writes without pause (share video) cannot hold the event loop.
        """
        fd = worker.stream.socket.fileno()
        decoder = worker.decoder
        total = 0
        while total < NOWAIT_READ_LIMIT:
            buffer = decoder.receive_buffer()
            try:
                if buffer is not None and len(buffer) >= DIRECT_READ_BYTES:
                    # A large frame (share video) is read straight into the buffer
                    # it is handed on in: one copy, from the kernel. The view is
                    # released even when nothing came, since the decoder's buffer
                    # cannot grow while a view of it is held.
                    with buffer:
                        count = os.readv(fd, [buffer])
                    if count:
                        decoder.received(count)
                else:
                    if buffer is not None:
                        buffer.release()
                    data = os.read(fd, READ_BYTES)
                    count = len(data)
                    decoder.feed(data)
            except BlockingIOError:
                return True
            if not count:
                return False
            total += count
        return True

    async def _leave_when_asked(self, meeting: Meeting, worker: WorkerHandle) -> None:
        await meeting.leave_requested.wait()
        log.info(
            "asking worker to leave meeting_id=%s pid=%d",
            meeting.meeting_id,
            worker.pid,
        )
        try:
            await worker.send(codec.Leave())
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return
        await trio.sleep(self.settings.leave_timeout)
        log.warning(
            "worker did not leave in time; terminating meeting_id=%s pid=%d",
            meeting.meeting_id,
            worker.pid,
        )
        worker.process.terminate()

    def _handle_events(self, meeting: Meeting, worker: WorkerHandle) -> None:
        stats = meeting.stats
        for event in worker.decoder:
            if isinstance(event, codec.Audio):
                stats.frames_received += 1
                stats.bytes_received += len(event.pcm)
                if event.audio_type == AudioType.MIXED:
                    stats.mixed_frames += 1
                elif event.audio_type == AudioType.ONE_WAY:
                    stats.one_way_frames += 1
                else:
                    stats.share_audio_frames += 1
                meeting.audio.publish(
                    event.audio_type, event.user_id, event.pcm, event.capture_ns
                )
                for observer in self.observers:
                    observer.audio_frame(meeting, event)
            elif isinstance(event, codec.ShareFrame):
                stats.share_frames_received += 1
                stats.share_bytes_received += len(event.i420)
                for observer in self.observers:
                    observer.share_frame(meeting, event)
            elif isinstance(event, codec.Status):
                self._on_status(meeting, event)
            elif isinstance(event, codec.Participant):
                if event.joined:
                    meeting.participants[event.user_id] = event.name
                else:
                    meeting.participants.pop(event.user_id, None)
                for observer in self.observers:
                    observer.participant(
                        meeting, event.user_id, event.name, event.joined
                    )
            elif isinstance(event, codec.ShareState):
                meeting.sharing_user = event.user_id if event.started else None
                self._update_pacing(meeting)
                for observer in self.observers:
                    observer.share_state(meeting, event.user_id, event.started)
            elif isinstance(event, codec.Log):
                worker_log.log(
                    event.level,
                    "meeting_id=%s pid=%d logger=%s %s",
                    meeting.meeting_id,
                    worker.pid,
                    event.logger,
                    event.message,
                )
            elif isinstance(event, codec.Stats):
                stats.worker_dropped_frames = event.values.get(
                    "worker_dropped_frames", stats.worker_dropped_frames
                )
            else:
                log.warning("unexpected frame from worker %r", event)

    def _on_status(self, meeting: Meeting, event: codec.Status) -> None:
        try:
            status = MeetingStatus(event.status)
        except ValueError:
            log.warning("unknown status from worker status=%s", event.status)
            return
        error = None
        if event.error_code is not None:
            try:
                code = ErrorCode[event.error_code]
            except KeyError:
                code = ErrorCode.INTERNAL_ERROR
            error = ApplianceError(event.message, code=code)
        if status == MeetingStatus.INMEETING and meeting.stats.join_ms is None:
            elapsed = time.monotonic() - meeting.created_monotonic
            meeting.stats.join_ms = round(elapsed * 1000, 1)
        self._set_status(meeting, status, error)

    @staticmethod
    def _update_pacing(meeting: Meeting) -> None:
        # Paced reading (see the audio bus) only for a meeting in progress with no
        # screen share: a join and an ending are followed as they happen, and share
        # video, megabytes a frame, is read as it comes so the worker never waits.
        meeting.audio.set_paced(
            meeting.status == MeetingStatus.INMEETING and meeting.sharing_user is None
        )

    def _set_status(
        self, meeting: Meeting, status: MeetingStatus, error: ApplianceError | None
    ) -> None:
        meeting.status = status
        self._update_pacing(meeting)
        # An error can come with a live status (recording refused while in the
        # meeting); the next report of that status without one clears it.
        if error is not None or status.is_final or status == MeetingStatus.INMEETING:
            meeting.error = error
        log.info(
            "meeting status meeting_id=%s status=%s code=%s",
            meeting.meeting_id,
            status,
            error.code.name if error else None,
        )
        for observer in self.observers:
            observer.meeting_status(meeting)
