"""Keep Python failures out of the SDK, and the SDK's prints out of the log.

Theory of operation
-------------------
An exception that escapes a Python function the SDK calls back aborts the whole
worker, so every function handed to the binding goes through
:meth:`CallbackGuard.wrap`: the exception is logged (the first few times, then
sampled, so a failing 100-per-second audio callback cannot flood the log), counted,
and, for callbacks the meeting cannot go on without, handed to ``on_fatal`` so the
driver ends the meeting as ``FAILED``. Nothing ever propagates into the SDK.

:class:`GatedEvents` closes the driver's events sink with the final status, so the
final status is the last event even when raw data still arrives from an SDK thread.

The binding's ``Join`` prints every join parameter, the meeting passcode and tokens
included, to C++'s ``std::cout``. :func:`stdout_muted` points fd 1 at ``/dev/null``
for the duration of such a call, so the worker's capture of fd 1 never sees them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from appliance.drivers.base import AudioType, DriverEvents
from appliance.drivers.zoom.mainloop import flush_c_stdio
from appliance.errors import ErrorCode
from appliance.status import MeetingStatus

logger = logging.getLogger(__name__)

# Log the first few failures of a callback in full, then one in this many.
_LOG_FIRST = 3
_LOG_EVERY = 1000


class CallbackGuard:
    """Wraps SDK callbacks so that nothing raised inside them reaches the SDK."""

    def __init__(self, on_fatal: Callable[[str, BaseException], None]) -> None:
        self._on_fatal = on_fatal
        self._lock = threading.Lock()
        self.failures: Counter[str] = Counter()

    def wrap(
        self, name: str, fn: Callable[..., Any], *, fatal: bool = False
    ) -> Callable[..., None]:
        """``fn`` made safe to hand to the SDK; ``fatal`` ends the meeting on error."""

        def guarded(*args: Any) -> None:
            try:
                fn(*args)
            except BaseException as exc:
                self._contain(name, exc, fatal)

        guarded.__name__ = f"guarded_{name}"
        return guarded

    def _contain(self, name: str, exc: BaseException, fatal: bool) -> None:
        try:
            with self._lock:
                self.failures[name] += 1
                count = self.failures[name]
            if count <= _LOG_FIRST or count % _LOG_EVERY == 0:
                logger.error(
                    "SDK callback %s raised (failure %d of it)",
                    name,
                    count,
                    exc_info=exc,
                )
            if fatal:
                self._on_fatal(name, exc)
        except BaseException:
            # Even logging failed (closed stream, MemoryError): stay silent rather
            # than let anything unwind into C++.
            pass


class GatedEvents:
    """The events sink, closed for good by the final status."""

    def __init__(self, events: DriverEvents) -> None:
        self._events = events
        self._lock = threading.Lock()
        self.closed = False

    def status(
        self,
        status: MeetingStatus,
        error_code: ErrorCode | None = None,
        message: str = "",
    ) -> None:
        with self._lock:
            if self.closed:
                return
            self.closed = status.is_final
            self._events.status(status, error_code, message)

    def participant_joined(self, user_id: int, name: str) -> None:
        with self._lock:
            if not self.closed:
                self._events.participant_joined(user_id, name)

    def participant_left(self, user_id: int, name: str) -> None:
        with self._lock:
            if not self.closed:
                self._events.participant_left(user_id, name)

    def audio(
        self, audio_type: AudioType, user_id: int, capture_ns: int, pcm: Any
    ) -> None:
        with self._lock:
            if not self.closed:
                self._events.audio(audio_type, user_id, capture_ns, pcm)

    def share_started(self, user_id: int) -> None:
        with self._lock:
            if not self.closed:
                self._events.share_started(user_id)

    def share_stopped(self, user_id: int) -> None:
        with self._lock:
            if not self.closed:
                self._events.share_stopped(user_id)

    def share_frame(
        self, user_id: int, capture_ns: int, width: int, height: int, i420: Any
    ) -> None:
        with self._lock:
            if not self.closed:
                self._events.share_frame(user_id, capture_ns, width, height, i420)


@contextlib.contextmanager
def stdout_muted() -> Iterator[None]:
    """Send fd 1 to ``/dev/null`` while the block runs, flushing stdio around it.

    Limitation: the redirect is process-wide, so other threads' writes to fd 1 during
    the block are lost too; for a worker, whose fd 1 only carries SDK noise, that is
    the price of keeping secrets out of its log. Keep the block short.
    """
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    flush_c_stdio()
    saved = os.dup(1)
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 1)
        finally:
            os.close(devnull)
        yield
    finally:
        flush_c_stdio()
        os.dup2(saved, 1)
        os.close(saved)
