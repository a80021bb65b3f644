"""The audio bus: one per meeting, from the worker's frames to every subscriber.

Theory of operation
-------------------
A meeting's frames arrive in order from its worker and are published here. Subscribers
(WebSocket clients) with the same :class:`StreamFilter` share a group; each group has
one :class:`~appliance.ws.batching.Batcher`, so a window's messages are built once per
group, not once per client. Delivering a message to a subscriber appends the same bytes
object to its queue and tries one non-blocking write; a client that keeps up costs one
system call per message and no task switch.

A subscriber whose socket is full is *backlogged*: the bus stops writing to it and wakes
its drainer task (:meth:`Subscriber.serve`, run by the WebSocket handler), which waits
for the socket and writes until the queue is empty. Meanwhile its queue drops its own
oldest frames when over ``queue_size``; nobody else notices.

:meth:`MeetingAudio.run` closes windows on time and sends heartbeats; it is the only
task of the bus. When the meeting ends, :meth:`MeetingAudio.close` flushes what is held,
then gives every subscriber an ``error`` message and the close code to end with.

While the bus is *paced* (the supervisor paces a meeting in progress without a screen
share, when the window is above 0), no client needs a frame before its window closes,
so the meeting's reader need not wake for every 10 ms frame. It sleeps until just
after each window boundary (:meth:`MeetingAudio.next_read`), takes everything the
worker wrote meanwhile, and closes the windows that are due
(:meth:`MeetingAudio.close_due`); ``run`` leaves closing to it. A batch then holds the
frames captured in one window (and any captured in the millisecond before the read)
and leaves right after the window's end: the supervisor wakes once per window instead
of once per frame.

A meeting's windows end just after a frame is complete (:data:`WINDOW_END_AFTER_FRAME`):
the first frame with a capture time sets the grid's offset within a frame, while the
meeting keeps its place, in whole frames, among the other meetings' windows. A window
otherwise ends anywhere up to a frame after its last frame, holding every message
that much longer for nothing.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Protocol

import trio

from appliance.drivers.base import FRAME_MS, AudioType
from appliance.errors import InvalidRequest
from appliance.ws import fanout, wire
from appliance.ws.batching import Batcher, ClientQueue, Message, Queued

log = logging.getLogger(__name__)

# How long after a window boundary a paced reader takes the worker's frames: the
# frames captured just before the boundary are then written, on a machine that is not
# overloaded.
READ_AFTER_BOUNDARY = 0.001

# How long after the capture of the frame that completes a window the window ends. A
# frame is stamped when it is complete, so this is all the hold a window's newest frame
# gets (plus READ_AFTER_BOUNDARY when paced); a frame that reaches the bus later than
# that goes out with the next window instead.
WINDOW_END_AFTER_FRAME = 0.002
FRAME_SECONDS = FRAME_MS / 1000

TYPE_NAMES = {
    "mixed": AudioType.MIXED,
    "one_way": AudioType.ONE_WAY,
    "share": AudioType.SHARE,
}


@dataclass(frozen=True, slots=True)
class StreamFilter:
    """Which streams a subscriber wants; ``None`` means all.

    ``user_ids`` selects one_way and share streams; the mixed stream has no user and is
    kept whenever its type is.
    """

    types: frozenset[int] | None = None
    user_ids: frozenset[int] | None = None

    @classmethod
    def parse(cls, types: str | None, user_ids: str | None) -> StreamFilter:
        """From the ``type`` and ``user_id`` query parameters (comma lists)."""
        parsed_types = None
        if types:
            try:
                parsed_types = frozenset(
                    TYPE_NAMES[t.strip()] for t in types.split(",")
                )
            except KeyError as exc:
                raise InvalidRequest(
                    f"type must be a comma list of {', '.join(TYPE_NAMES)},"
                    f" got {types!r}"
                ) from exc
        parsed_users = None
        if user_ids:
            try:
                parsed_users = frozenset(int(u) for u in user_ids.split(","))
            except ValueError as exc:
                raise InvalidRequest(
                    f"user_id must be a comma list of integers, got {user_ids!r}"
                ) from exc
            if any(u < 0 or u >= 2**64 for u in parsed_users):
                raise InvalidRequest("user_id out of range")
        return cls(parsed_types, parsed_users)

    def matches(self, audio_type: int, user_id: int) -> bool:
        if self.types is not None and audio_type not in self.types:
            return False
        return (
            self.user_ids is None
            or audio_type == AudioType.MIXED
            or user_id in self.user_ids
        )


class Writer(Protocol):
    """A subscriber's socket: :class:`~appliance.http.front_door.DirectWriteStream`."""

    def attach(self, queue: ClientQueue) -> None: ...

    def direct_fd(self) -> int | None:
        """The open socket to send to directly while nothing is queued, if any."""
        ...

    def write_nowait(self) -> None: ...

    async def flush(self) -> None: ...


class Subscriber:
    """One client of one meeting's audio."""

    def __init__(self, writer: Writer, stream_filter: StreamFilter, queue_size: int):
        self.filter = stream_filter
        self.queue = ClientQueue(queue_size)
        self._writer = writer
        writer.attach(self.queue)
        self._backlogged = False
        self._wake = trio.Event()
        self._notice: Queued | None = None
        self.alive = True
        self.close_code: int | None = None

    def push(self, messages: list[Message]) -> None:
        for message in messages:
            self.queue.push_audio(message)
        self._pump()

    def direct_fd(self) -> int | None:
        """The socket a message may go to straight away: none while anything waits
        in this subscriber's queue, so that nothing overtakes it."""
        if not self.alive or self._backlogged or self.queue:
            return None
        return self._writer.direct_fd()

    def sent_directly(self, message: Message, result: int) -> None:
        """Account for a send of ``message`` to :meth:`direct_fd` that returned
        ``result`` (bytes written, or a negated errno), when it fell short."""
        if result < 0 and result != fanout.FULL:
            self.alive = False
            self._wake.set()
            return
        self.queue.push_audio(message)
        if result > 0:
            self.queue.consumed(result)
        self._backlogged = True
        self._wake.set()
        self.queue.enforce_limit()
        self._report_drops()

    def push_control(self, data: bytes) -> None:
        self.queue.push_control(data)
        self._pump()

    def finish(self, code: str, message: str, close_code: int) -> None:
        """Send a last ``error`` message; the drainer then ends with ``close_code``."""
        self.close_code = close_code
        self._report_drops(force=True)
        self.push_control(wire.error_message(code, message))
        self._wake.set()

    def _report_drops(self, *, force: bool = False) -> None:
        """Queue a ``dropped`` notice for frames lost since the last one.

        One notice at a time is in flight: while it waits in the queue, further drops
        add up for the next one instead of queueing a notice per window.
        """
        if not self.queue.has_unreported_drops:
            return
        if force or self._notice is None or self._notice.written:
            notice = wire.dropped_message(self.queue.take_drop_report())
            self._notice = self.queue.push_control(notice)

    def _pump(self) -> None:
        if not self.alive:
            return
        if not self._backlogged:
            try:
                self._writer.write_nowait()
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self.alive = False
                self._wake.set()
                return
            if self.queue:
                self._backlogged = True
                self._wake.set()
        self.queue.enforce_limit()
        self._report_drops()

    async def serve(self) -> int | None:
        """Drain a backlogged queue until the stream ends.

        Returns the close code to end the WebSocket with when the meeting is over, or
        ``None`` when the client went away.
        """
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            if not self.alive:
                return None
            try:
                await self._writer.flush()
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self.alive = False
                return None
            self._backlogged = False
            self._report_drops()
            if self.close_code is not None:
                return self.close_code


@dataclass(slots=True)
class _Group:
    batcher: Batcher
    subscribers: set[Subscriber] = field(default_factory=set)

    def deliver(self, messages: list[Message]) -> None:
        for message in messages:
            # Most subscribers have nothing queued: they get the message with one
            # native loop of sends, and only those it fell short for cost Python
            # more than a list entry.
            direct: list[Subscriber] = []
            fds: list[int] = []
            for subscriber in self.subscribers:
                fd = subscriber.direct_fd()
                if fd is None:
                    subscriber.push([message])
                else:
                    direct.append(subscriber)
                    fds.append(fd)
            if not fds:
                continue
            size = len(message.data)
            results = fanout.send_to_all(fds, message.data)
            for subscriber, result in zip(direct, results, strict=True):
                if result != size:
                    subscriber.sent_directly(message, result)


class MeetingAudio:
    """The bus of one meeting: publish frames, subscribe clients, close at the end."""

    def __init__(
        self,
        meeting_id: str,
        *,
        window: float,
        heartbeat_interval: float,
        phase: float = 0.0,
    ) -> None:
        self.meeting_id = meeting_id
        self.window = window
        self.phase = phase
        # Trio's clock is CLOCK_MONOTONIC (the workers' capture clock) plus an offset.
        self._monotonic_to_trio = trio.current_time() - time.monotonic()
        self.heartbeat_interval = heartbeat_interval
        self._groups: dict[StreamFilter, _Group] = {}
        self._new_window = trio.Event()
        self._closed = False
        self._dropped_by_departed = 0
        self._paced = False
        self._aligned = window <= 0

    @property
    def paced(self) -> bool:
        """Whether the meeting's reader closes windows (see the module docstring)."""
        return self._paced

    def set_paced(self, paced: bool) -> None:
        """Pace reading by windows, or not; never with a window of 0."""
        paced = paced and self.window > 0
        if paced != self._paced:
            self._paced = paced
            # run() recomputes whether it closes windows itself.
            self._new_window.set()

    def next_read(self, now: float) -> float:
        """When a paced reader should next take frames: just after the next window
        boundary after ``now`` (Trio's clock)."""
        elapsed = (now - READ_AFTER_BOUNDARY - self.phase) / self.window
        boundary = (math.floor(elapsed + 1e-6) + 1) * self.window + self.phase
        return boundary + READ_AFTER_BOUNDARY

    def _align_windows(self, captured: float) -> None:
        # Limitation: windows follow the first frame's timing only; if a driver's
        # frames drift against CLOCK_MONOTONIC, a window's end drifts away from its
        # last frame again, by up to a frame.
        self._aligned = True
        place = math.floor(self.phase / FRAME_SECONDS + 1e-6) * FRAME_SECONDS
        offset = (captured + WINDOW_END_AFTER_FRAME) % FRAME_SECONDS
        self.phase = (place + offset) % self.window
        for group in self._groups.values():
            if group.batcher.deadline is None:
                group.batcher.phase = self.phase

    def close_due(self, now: float) -> None:
        """Deliver the batches whose window has closed by ``now``."""
        for group in list(self._groups.values()):
            messages = group.batcher.poll(now)
            if messages:
                group.deliver(messages)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def subscriber_count(self) -> int:
        return sum(len(g.subscribers) for g in self._groups.values())

    @property
    def frames_dropped(self) -> int:
        live = sum(
            s.queue.frames_dropped for g in self._groups.values() for s in g.subscribers
        )
        return live + self._dropped_by_departed

    def subscribe(
        self, writer: Writer, stream_filter: StreamFilter, queue_size: int
    ) -> Subscriber:
        """Add a client; it is sent the ``audio_format`` message first."""
        subscriber = Subscriber(writer, stream_filter, queue_size)
        group = self._groups.get(stream_filter)
        if group is None:
            group = self._groups[stream_filter] = _Group(
                Batcher(self.window, self.phase)
            )
        group.subscribers.add(subscriber)
        subscriber.push_control(wire.audio_format_message())
        log.debug(
            "subscribed meeting_id=%s filter=%s clients=%d",
            self.meeting_id,
            stream_filter,
            self.subscriber_count,
        )
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        group = self._groups.get(subscriber.filter)
        if group is None or subscriber not in group.subscribers:
            return
        group.subscribers.discard(subscriber)
        self._dropped_by_departed += subscriber.queue.frames_dropped
        if not group.subscribers:
            del self._groups[subscriber.filter]

    def publish(
        self, audio_type: int, user_id: int, pcm: bytes, capture_ns: int | None = None
    ) -> None:
        """Hand one frame to every group whose filter wants it.

        ``capture_ns`` is the worker's ``time.monotonic_ns()`` of the frame's capture.
        """
        if self._closed or not self._groups:
            return
        now = trio.current_time()
        captured = None
        if capture_ns is not None:
            captured = capture_ns / 1e9 + self._monotonic_to_trio
            if not self._aligned:
                self._align_windows(captured)
        for stream_filter, group in self._groups.items():
            if not stream_filter.matches(audio_type, user_id):
                continue
            batcher = group.batcher
            opened_window = batcher.deadline is None
            messages = batcher.add(audio_type, user_id, pcm, now, captured)
            if messages:
                group.deliver(messages)
            elif opened_window and not self._paced:
                self._new_window.set()

    def close(self, code: str, message: str, close_code: int) -> None:
        """End every stream: deliver what is held, then an ``error`` message."""
        if self._closed:
            return
        for group in self._groups.values():
            group.deliver(group.batcher.flush())
        self._closed = True
        for group in self._groups.values():
            for subscriber in group.subscribers:
                subscriber.finish(code, message, close_code)

    async def run(self) -> None:
        """Close batching windows on time and send heartbeats, until cancelled."""
        next_heartbeat = trio.current_time() + self.heartbeat_interval
        while not self._closed:
            deadlines = [
                g.batcher.deadline
                for g in self._groups.values()
                if g.batcher.deadline is not None and not self._paced
            ]
            wake_at = min(deadlines, default=math.inf)
            self._new_window = trio.Event()
            with trio.move_on_at(min(wake_at, next_heartbeat)):
                await self._new_window.wait()
            if self._closed:
                return
            now = trio.current_time()
            if not self._paced:
                self.close_due(now)
            if now >= next_heartbeat:
                heartbeat = wire.heartbeat_message()
                for group in list(self._groups.values()):
                    for subscriber in group.subscribers:
                        subscriber.push_control(heartbeat)
                next_heartbeat = now + self.heartbeat_interval
