"""From the driver thread to the worker socket, without ever blocking the driver.

The driver thread (the SDK's, or the simulator's) reports events by encoding them and
putting the frames here. Whoever puts a frame also tries to write it at once, with a
non-blocking ``writev`` on the socket, under the outbox's lock: in the common case a
frame reaches the supervisor with one system call and no thread hand-off. Only when
the socket is full does a frame wait in the queue, and then ``wake`` asks the Trio side
to wait for the socket and :meth:`Outbox.flush_nowait` the rest. The lock and the
single queue keep frames in the order they were put, whichever thread writes them.

Putting never blocks: when the supervisor falls behind by more than ``max_bytes``,
media frames are dropped and counted, while control frames (status, participants,
logs) are always kept, since losing one would leave the supervisor with a wrong
picture of the meeting.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable

from appliance.protocol import codec

IOV_MAX = 64


class Outbox:
    """A thread-safe, non-blocking writer of frames to the socket ``fd``.

    ``wake`` is called (from the putting thread) when frames are left waiting for the
    socket; it must be thread-safe and cheap, for example a Trio token's
    ``run_sync_soon`` of a channel send.
    """

    def __init__(
        self, fd: int, wake: Callable[[], None], max_bytes: int = 64 * 1024 * 1024
    ) -> None:
        self._fd = fd
        self._wake = wake
        self._max_bytes = max_bytes
        self._lock = threading.Lock()
        self._buffers: deque[memoryview] = deque()
        self._bytes = 0
        self._wake_pending = False
        self._closed = False
        self.dropped_media_frames = 0

    # Limitation: the frames of one 10 ms tick (mixed, then each one_way) are written
    # one at a time, a system call each; coalescing a tick would save a worker a few
    # microseconds a frame.
    def put(self, event: codec.Event, *, media: bool = False) -> None:
        """Write ``event`` now if the socket takes it, else queue it (or drop media)."""
        head, body = codec.encode_parts(event)
        size = len(head) + len(body)
        with self._lock:
            if self._closed:
                return
            if media and self._bytes + size > self._max_bytes:
                self.dropped_media_frames += 1
                return
            self._buffers.append(memoryview(head))
            if body:
                self._buffers.append(memoryview(body).cast("B"))
            self._bytes += size
            self._write_locked()
            wake = bool(self._buffers) and not self._wake_pending
            if wake:
                self._wake_pending = True
        if wake:
            self._wake()

    def flush_nowait(self) -> bool:
        """Write what the socket takes now; true when nothing is left waiting."""
        with self._lock:
            self._wake_pending = False
            self._write_locked()
            return not self._buffers

    def close(self) -> None:
        """Refuse further frames (the socket is gone, or the worker is done)."""
        with self._lock:
            self._closed = True
            self._buffers.clear()
            self._bytes = 0

    def _write_locked(self) -> None:
        buffers = self._buffers
        while buffers:
            batch = [buffers[i] for i in range(min(IOV_MAX, len(buffers)))]
            try:
                written = os.writev(self._fd, batch)
            except BlockingIOError:
                return
            except OSError:
                # The supervisor is gone; the read side sees EOF and ends the worker.
                self._closed = True
                buffers.clear()
                self._bytes = 0
                return
            self._bytes -= written
            while written:
                first = buffers[0]
                if written >= len(first):
                    written -= len(first)
                    buffers.popleft()
                else:
                    buffers[0] = first[written:]
                    written = 0
