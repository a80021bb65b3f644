"""What a driver is: the thing inside a worker that is (or imitates) the Zoom SDK.

Theory of operation
-------------------
The Zoom Meeting SDK for Linux is a process-wide singleton that delivers every callback
on the thread that initialised it, and only while a GLib main context is iterated there.
An exception escaping one of its callbacks aborts the process. So a driver owns one
thread of its own, *the driver thread*, and does all its work on it:

* :meth:`Driver.run` is called on the driver thread and returns only when the meeting is
  over for the bot (it ended, failed, or the bot left when asked to by
  :meth:`Driver.request_leave`).
  Before returning it has reported a final status (``ENDED`` or ``FAILED``).
* Everything the driver learns it reports through :class:`DriverEvents`, whose methods
  are safe to call from the driver thread, never block and never raise.
* :meth:`Driver.request_leave` may be called from any thread at any time, including
  before :meth:`Driver.run` started or after it returned.

The worker process (:mod:`appliance.worker`) runs Trio in the main thread and the driver
in the driver thread; the simulated driver follows the same rules as the real one, so
tests exercise the same threading as production.
"""

from __future__ import annotations

import abc
import enum
from dataclasses import dataclass, field
from typing import Any, Protocol

from appliance.errors import ErrorCode
from appliance.status import MeetingStatus

SAMPLE_RATE = 32000
CHANNELS = 1
FRAME_MS = 10
FRAME_SAMPLES = SAMPLE_RATE * FRAME_MS // 1000
FRAME_BYTES = FRAME_SAMPLES * 2  # S16LE mono


class AudioType(enum.IntEnum):
    """Kinds of audio stream, numbered as on the WebSocket wire."""

    MIXED = 0
    ONE_WAY = 1
    SHARE = 2


@dataclass(frozen=True)
class JoinRequest:
    """Everything a driver needs to join one meeting.

    ``scenario`` is only read by the simulated driver: a built-in scenario name or a
    path to a TOML file. Tokens are optional; which ones a meeting needs depends on how
    the host set it up.
    """

    meeting_id: str
    password: str = ""
    display_name: str = "Meeting Bot"
    join_token: str | None = None
    obf_token: str | None = None
    zak_token: str | None = None
    webinar_token: str | None = None
    scenario: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


class DriverEvents(Protocol):
    """Where a driver reports what happens. Thread-safe; never blocks; never raises.

    ``capture_ns`` is ``time.monotonic_ns()`` (CLOCK_MONOTONIC, shared by all processes
    of one machine) at the moment the SDK handed the data over. Buffers passed to
    ``audio`` and ``share_frame`` are copied before the call returns, so a driver may
    reuse them.
    """

    def status(
        self,
        status: MeetingStatus,
        error_code: ErrorCode | None = None,
        message: str = "",
    ) -> None: ...

    def participant_joined(self, user_id: int, name: str) -> None: ...

    def participant_left(self, user_id: int, name: str) -> None: ...

    def audio(
        self, audio_type: AudioType, user_id: int, capture_ns: int, pcm: Any
    ) -> None: ...

    def share_started(self, user_id: int) -> None: ...

    def share_stopped(self, user_id: int) -> None: ...

    def share_frame(
        self, user_id: int, capture_ns: int, width: int, height: int, i420: Any
    ) -> None: ...


class Driver(abc.ABC):
    """A meeting driver. See the module docstring for the threading rules."""

    name: str

    @abc.abstractmethod
    def run(self, request: JoinRequest, events: DriverEvents) -> None:
        """Join, stream, and return once the meeting is over for the bot."""

    @abc.abstractmethod
    def request_leave(self) -> None:
        """Ask the bot to leave. Thread-safe and idempotent."""
