"""From the driver thread to the worker socket, without ever blocking the driver.

The driver thread (the SDK's, or the simulator's) reports events by encoding them and
putting the frames here. The Trio side takes them off in batches and writes them to the
supervisor. Putting never blocks: when the supervisor falls behind by more than
``max_bytes``, media frames are dropped and counted, while control frames (status,
participants, logs) are always kept, since losing one would leave the supervisor with a
wrong picture of the meeting.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

from appliance.protocol import codec

Frame = tuple[bytes, bytes | memoryview]


class Outbox:
    """A thread-safe, non-blocking queue of encoded frames with a wake-up callback.

    ``wake`` is called (from the putting thread) whenever the outbox turns from empty to
    non-empty; it must itself be thread-safe and cheap, for example a Trio token's
    ``run_sync_soon`` of an event's ``set``.
    """

    def __init__(self, wake: Callable[[], None], max_bytes: int = 64 * 1024 * 1024):
        self._wake = wake
        self._max_bytes = max_bytes
        self._lock = threading.Lock()
        self._frames: deque[Frame] = deque()
        self._bytes = 0
        self._closed = False
        self.dropped_media_frames = 0

    def put(self, event: codec.Event, *, media: bool = False) -> None:
        """Queue ``event``; a media event may be dropped when the queue is full."""
        head, body = codec.encode_parts(event)
        size = len(head) + len(body)
        with self._lock:
            if self._closed:
                return
            if media and self._bytes + size > self._max_bytes:
                self.dropped_media_frames += 1
                return
            was_empty = not self._frames
            self._frames.append((head, body))
            self._bytes += size
        if was_empty:
            self._wake()

    def take_all(self) -> list[Frame]:
        """Everything queued so far, oldest first."""
        with self._lock:
            frames = list(self._frames)
            self._frames.clear()
            self._bytes = 0
        return frames

    def close(self) -> None:
        """Refuse further frames (the socket is gone)."""
        with self._lock:
            self._closed = True
            self._frames.clear()
            self._bytes = 0
