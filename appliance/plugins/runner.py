"""One plugin's runner: a thread of its own, fed through a queue that never blocks.

Theory of operation
-------------------
The event loop hands each event to each runner by putting it on a
:class:`queue.SimpleQueue`, which never blocks. Media frames count against a budget
per plugin and meeting run, kept in a :class:`Tap`: when the plugin already has as
many frames of that run queued (or in hand) as the budget allows, the new frame is
dropped and counted, there and then, on the loop. So a slow plugin loses its own
frames of its own meetings, and nothing else waits for it. Lifecycle events are few
and never dropped: they bypass the budget.

The runner thread takes events off in order and calls the plugin through a pluggy
manager that holds this plugin alone. An exception is caught and counted; it is logged
with its traceback once when a burst of failures begins, then as a count when the
plugin recovers (and once a minute while it does not).

Counters are split by writer: the loop writes ``*_in`` and ``dropped``, the runner
writes ``*_done``, ``delivered``, ``errors`` and ``discarded``. Each thread only reads
the other's (an int read is atomic), so there is no lock for the loop to wait on.

Shutdown: :meth:`PluginRunner.stop` queues a sentinel behind everything; the runner
delivers what is ahead of it, calls ``on_plugin_stop`` and ends.
:meth:`PluginRunner.discard_frames` (after the drain timeout) makes it skip the frames
still queued, but not the lifecycle events, so files are still finalised.

Limitation: Python cannot interrupt a hook that never returns; at shutdown the
runner's thread (a daemon) is then abandoned, and ``on_plugin_stop`` is not called.
Limitation: plugins share the interpreter lock with the event loop; one that computes
in pure Python without pause takes turns with the loop (5 ms at a time by default)
rather than only costing its own frames. numpy, file and socket I/O release the lock.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import trio

from appliance.plugins.types import MeetingInfo, PluginContext, audio_frame, share_frame
from appliance.protocol import codec

log = logging.getLogger(__name__)

_AUDIO = 0
_SHARE = 1
_EVENT = 2
_STOP = object()
REMIND_EVERY = 60.0


@dataclass(eq=False)
class Tap:
    """One plugin's share of one meeting run: its frame budget and its counters."""

    meeting: MeetingInfo
    # Written on the loop only.
    audio_in: int = 0
    share_in: int = 0
    events_in: int = 0
    dropped: int = 0
    burst: int = 0  # frames dropped since the plugin last caught up
    burst_since: float = 0.0
    burst_reminded: float = 0.0
    # Written on the runner thread only.
    audio_done: int = 0
    share_done: int = 0
    events_done: int = 0
    delivered: int = 0  # frames
    errors: int = 0
    discarded: int = 0

    @property
    def pending(self) -> int:
        """Events queued for the plugin or in its hands."""
        return (
            self.audio_in
            + self.share_in
            + self.events_in
            - self.audio_done
            - self.share_done
            - self.events_done
        )

    def counters(self) -> dict[str, int]:
        return {
            "frames_delivered": self.delivered,
            "dropped_frames": self.dropped + self.discarded,
            "errors": self.errors,
            "pending": self.pending,
        }


class PluginRunner:
    """Runs one plugin on its own thread; the ``offer_*`` and ``send`` methods are
    for the event loop and return at once."""

    def __init__(
        self,
        name: str,
        callers: Mapping[str, Callable[..., Any]],
        context: PluginContext,
        *,
        audio_budget: int,
        share_budget: int,
    ) -> None:
        self.name = name
        self.context = context
        self.audio_budget = audio_budget
        self.share_budget = share_budget
        self._callers = dict(callers)
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self.done = trio.Event()
        # Loop side.
        self.dropped = 0
        self._stopping = False
        self._discarding = False
        # Runner side.
        self.delivered = 0
        self.errors = 0
        self.discarded = 0
        self.error: str | None = None
        self.stopped = False
        self._burst = 0
        self._burst_since = 0.0
        self._reminded = 0.0

    def implements(self, hook_name: str) -> bool:
        return hook_name in self._callers

    @property
    def state(self) -> str:
        if self.error is not None:
            return "failed"
        if self.stopped:
            return "stopped"
        if self._thread is None:
            return "loaded"
        return "stopping" if self._stopping else "running"

    def start(self, token: trio.lowlevel.TrioToken) -> None:
        """Start the thread; ``done`` is set (through ``token``) when it ends."""
        self._token = token
        self._thread = threading.Thread(
            target=self._main, name=f"hmb-plugin-{self.name}", daemon=True
        )
        self._thread.start()

    @property
    def thread(self) -> threading.Thread | None:
        return self._thread

    # -- on the event loop ----------------------------------------------------------

    def offer_audio(self, tap: Tap, event: codec.Audio) -> None:
        """Queue an audio frame, or drop it when the plugin is behind."""
        if tap.audio_in - tap.audio_done >= self.audio_budget:
            self._drop(tap)
            return
        tap.audio_in += 1
        self._queue.put((_AUDIO, tap, event))
        if tap.burst:
            self._maybe_caught_up(tap, tap.audio_in - tap.audio_done, self.audio_budget)

    def offer_share(self, tap: Tap, event: codec.ShareFrame) -> None:
        """Queue a share frame, or drop it when the plugin is behind."""
        if tap.share_in - tap.share_done >= self.share_budget:
            self._drop(tap)
            return
        tap.share_in += 1
        self._queue.put((_SHARE, tap, event))
        if tap.burst:
            self._maybe_caught_up(tap, tap.share_in - tap.share_done, self.share_budget)

    def send(self, tap: Tap, hook_name: str, **kwargs: Any) -> None:
        """Queue a lifecycle event; never dropped. Unimplemented hooks are skipped."""
        if hook_name in self._callers:
            tap.events_in += 1
            self._queue.put((_EVENT, tap, (hook_name, kwargs)))

    def stop(self) -> None:
        """Deliver what is queued, then ``on_plugin_stop``, then end the thread."""
        if not self._stopping:
            self._stopping = True
            self._queue.put(_STOP)

    def discard_frames(self) -> None:
        """Skip the frames still queued (the drain timed out); keep lifecycle events."""
        self._discarding = True

    def _drop(self, tap: Tap) -> None:
        tap.dropped += 1
        self.dropped += 1
        if not tap.burst:
            tap.burst_since = tap.burst_reminded = time.monotonic()
            log.warning(
                "plugin is behind; dropping its frames plugin=%s meeting_id=%s "
                "pending=%d",
                self.name,
                tap.meeting.meeting_id,
                tap.pending,
            )
        elif tap.burst % 100 == 0:
            now = time.monotonic()
            if now - tap.burst_reminded >= REMIND_EVERY:
                tap.burst_reminded = now
                log.warning(
                    "plugin still behind plugin=%s meeting_id=%s "
                    "dropped_in_burst=%d seconds=%.0f",
                    self.name,
                    tap.meeting.meeting_id,
                    tap.burst,
                    now - tap.burst_since,
                )
        tap.burst += 1

    def _maybe_caught_up(self, tap: Tap, queued: int, budget: int) -> None:
        # A plugin that is slow for good frees one place now and then; the burst is
        # over only once its queue is half empty, so it is not logged every time.
        if queued > budget // 2:
            return
        log.info(
            "plugin caught up plugin=%s meeting_id=%s dropped_in_burst=%d seconds=%.1f",
            self.name,
            tap.meeting.meeting_id,
            tap.burst,
            time.monotonic() - tap.burst_since,
        )
        tap.burst = 0

    # -- on the runner thread -------------------------------------------------------

    def _main(self) -> None:
        try:
            self._run()
        except BaseException as exc:
            # A bug of ours, or a plugin that ended its thread (sys.exit).
            self.error = f"runner ended: {exc!r}"
            log.exception("plugin runner ended plugin=%s", self.name)
        finally:
            self.stopped = True
            if self._token is not None:
                # The loop may be gone already (the appliance stopped without us).
                with contextlib.suppress(trio.RunFinishedError):
                    self._token.run_sync_soon(self.done.set)

    def _run(self) -> None:
        if not self._call(None, "on_plugin_start", {"context": self.context}):
            self.error = "on_plugin_start raised (see the log)"
        while True:
            item = self._queue.get()
            if item is _STOP:
                break
            kind, tap, payload = item
            if kind == _EVENT:
                if self.error is None:
                    hook_name, kwargs = payload
                    self._call(tap, hook_name, {"meeting": tap.meeting, **kwargs})
                tap.events_done += 1
            elif kind == _AUDIO:
                self._frame(tap, "on_audio_frame", audio_frame, payload)
                tap.audio_done += 1
            else:
                self._frame(tap, "on_share_frame", share_frame, payload)
                tap.share_done += 1
        if self.error is None:
            self._call(None, "on_plugin_stop", {})

    def _frame(
        self, tap: Tap, hook_name: str, convert: Callable[[str, Any], Any], event: Any
    ) -> None:
        if self._discarding or self.error is not None:
            tap.discarded += 1
            self.discarded += 1
            return
        self._call(tap, hook_name, None, convert, event)

    def _call(
        self,
        tap: Tap | None,
        hook_name: str,
        kwargs: dict[str, Any] | None,
        convert: Callable[[str, Any], Any] | None = None,
        event: Any = None,
    ) -> bool:
        caller = self._callers.get(hook_name)
        if caller is None:
            return True
        try:
            if kwargs is None:
                assert tap is not None and convert is not None
                frame = convert(tap.meeting.meeting_id, event)
                kwargs = {"meeting": tap.meeting, "frame": frame}
            caller(**kwargs)
        except Exception:
            self._failed(tap, hook_name)
            return False
        if convert is not None:
            assert tap is not None
            tap.delivered += 1
            self.delivered += 1
        if self._burst:
            log.warning(
                "plugin recovered plugin=%s errors_in_burst=%d seconds=%.1f",
                self.name,
                self._burst,
                time.monotonic() - self._burst_since,
            )
            self._burst = 0
        return True

    def _failed(self, tap: Tap | None, hook_name: str) -> None:
        self.errors += 1
        if tap is not None:
            tap.errors += 1
        meeting_id = tap.meeting.meeting_id if tap is not None else None
        now = time.monotonic()
        if not self._burst:
            self._burst_since = self._reminded = now
            log.exception(
                "plugin raised; counting further errors until it recovers "
                "plugin=%s hook=%s meeting_id=%s",
                self.name,
                hook_name,
                meeting_id,
            )
        elif now - self._reminded >= REMIND_EVERY:
            self._reminded = now
            log.error(
                "plugin still raising plugin=%s hook=%s meeting_id=%s "
                "errors_in_burst=%d seconds=%.0f",
                self.name,
                hook_name,
                meeting_id,
                self._burst + 1,
                now - self._burst_since,
            )
        self._burst += 1
