"""Sans-IO logic of the audio stream: batching windows and per-client queues.

Theory of operation
-------------------
Clients that asked for the same filter form a group. A group has one :class:`Batcher`:
frames go in as they arrive from the worker; once per window the batcher turns what it
holds into one WebSocket message per ``(audio_type, user_id)`` stream, each carrying one
16-byte header and the stream's consecutive PCM. Those bytes are built once and handed
to every client of the group. With a window of 0 every frame is its own message at once.

Each client has a :class:`ClientQueue` of messages not yet written to its socket,
bounded in audio *frames* (``queue_size``). When a slow client's queue is over the
bound, the oldest whole audio messages are dropped and counted; control messages
(format, heartbeats, notices, errors, close) are never dropped, and a message whose
first bytes have already been written is never dropped (it would corrupt the stream).

Nothing here knows about sockets or clocks: time comes in as an argument, bytes go out
as buffers, so all of it is tested without either.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from appliance.ws.wire import audio_message


@dataclass(frozen=True, slots=True)
class Message:
    """A ready-to-write WebSocket frame and how many audio frames it carries."""

    data: bytes
    frames: int


class Batcher:
    """Holds frames of one group, per stream, until the window they arrived in ends.

    Windows are the intervals ``[phase + n * window, phase + (n + 1) * window)`` of the
    clock, so a frame is held for at most one window. Meetings get different phases,
    so their windows do not all close, and their clients are not all written to, at the
    same instant.
    """

    def __init__(self, window: float, phase: float = 0.0) -> None:
        self.window = window
        self.phase = phase % window if window > 0 else 0.0
        self._pending: dict[tuple[int, int], list[bytes]] = {}
        self.deadline: float | None = None

    def add(
        self,
        audio_type: int,
        user_id: int,
        pcm: bytes,
        now: float,
        captured: float | None = None,
    ) -> list[Message]:
        """Take one frame; return the messages that are due now (only at window 0).

        ``captured`` is when the frame was captured, on the same clock as ``now``. A
        batch is due one window after its first frame was *captured*, so the batching
        hold and the trip from the worker together stay within one window.
        """
        if self.window <= 0:
            return [Message(audio_message(audio_type, user_id, (pcm,)), 1)]
        chunks = self._pending.get((audio_type, user_id))
        if chunks is None:
            self._pending[(audio_type, user_id)] = [pcm]
        else:
            chunks.append(pcm)
        if self.deadline is None:
            # Windows sit on a fixed grid of the clock: they never drift, and every
            # group of a meeting closes its window at the same instant.
            start = now if captured is None else min(captured, now)
            elapsed = (start - self.phase) / self.window
            self.deadline = (math.floor(elapsed + 1e-6) + 1) * self.window + self.phase
        return []

    def poll(self, now: float) -> list[Message]:
        """The batched messages if the window has closed by ``now``, else nothing."""
        if self.deadline is None or now < self.deadline:
            return []
        return self.flush()

    def flush(self) -> list[Message]:
        """Everything held, as one message per stream, in order of first arrival."""
        messages = [
            Message(audio_message(audio_type, user_id, chunks), len(chunks))
            for (audio_type, user_id), chunks in self._pending.items()
        ]
        self._pending.clear()
        self.deadline = None
        return messages


@dataclass(slots=True)
class Queued:
    """One message in a client queue; ``written`` turns true once all of it is out."""

    data: memoryview
    frames: int  # 0 for a control message, which is never dropped
    written: bool = False


class ClientQueue:
    """Bytes waiting for one client's socket, bounded in audio frames, drop-oldest."""

    def __init__(self, max_frames: int) -> None:
        if max_frames < 1:
            raise ValueError("a client queue holds at least one frame")
        self.max_frames = max_frames
        self._items: deque[Queued] = deque()
        self._offset = 0  # bytes of the first item already written
        self.queued_frames = 0
        self.queued_bytes = 0
        self.frames_dropped = 0
        self._unreported_drops = 0

    def __bool__(self) -> bool:
        return bool(self._items)

    def push_audio(self, message: Message) -> None:
        self._push(Queued(memoryview(message.data), message.frames))
        self.queued_frames += message.frames

    def push_control(self, data: bytes) -> Queued:
        item = Queued(memoryview(data), 0)
        self._push(item)
        return item

    def _push(self, item: Queued) -> None:
        self._items.append(item)
        self.queued_bytes += len(item.data)

    def enforce_limit(self) -> int:
        """Drop the oldest audio messages while over the bound; return frames dropped.

        The newest audio message is always kept, so a window larger than the bound
        still reaches a client that keeps up.
        """
        dropped = 0
        while self.queued_frames > self.max_frames:
            victim = self._oldest_droppable()
            if victim is None:
                break
            item = self._items[victim]
            del self._items[victim]
            self.queued_frames -= item.frames
            self.queued_bytes -= len(item.data)
            dropped += item.frames
        self.frames_dropped += dropped
        self._unreported_drops += dropped
        return dropped

    def _oldest_droppable(self) -> int | None:
        newest_audio = None
        for index in range(len(self._items) - 1, -1, -1):
            if self._items[index].frames:
                newest_audio = index
                break
        for index, item in enumerate(self._items):
            if index == newest_audio:
                return None
            if item.frames and not (index == 0 and self._offset):
                return index
        return None

    @property
    def has_unreported_drops(self) -> bool:
        return self._unreported_drops > 0

    def take_drop_report(self) -> int:
        """Frames dropped since the last call (for a ``dropped`` notice)."""
        dropped, self._unreported_drops = self._unreported_drops, 0
        return dropped

    def buffers(self, limit: int = 64) -> list[memoryview]:
        """Up to ``limit`` buffers to write, in order; the first may be partial."""
        out = []
        for index, item in enumerate(self._items):
            if index == limit:
                break
            out.append(item.data[self._offset :] if index == 0 else item.data)
        return out

    def consumed(self, written: int) -> None:
        """Account for ``written`` bytes that reached the socket."""
        self.queued_bytes -= written
        written += self._offset
        while self._items and written >= len(self._items[0].data):
            item = self._items.popleft()
            written -= len(item.data)
            self.queued_frames -= item.frames
            item.written = True
        self._offset = written
