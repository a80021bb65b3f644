"""The simulated driver: a meeting played from a scenario, in real time.

Theory of operation
-------------------
:meth:`SimDriver.run` does everything on the driver thread, as the real SDK does:

1. ``CONNECTING`` at once. The scenario is loaded (``request.scenario``: a built-in
   name or a path, see :mod:`appliance.drivers.sim.scenario`) and, when the join will
   succeed, every sound and picture is precomputed; that work overlaps the
   ``connect_s`` the scenario asks for.
2. A failing ``join_result`` reports ``FAILED`` with the code the SDK's result maps
   to in :mod:`appliance.drivers.sdk_codes`, and ``run`` returns.
3. ``WAITINGFORHOST`` for ``waiting_for_host_s`` and ``IN_WAITING_ROOM`` for
   ``waiting_room_s``, each only when positive, then ``INMEETING``: meeting time 0.
4. Frame ``k`` is due at ``t_in + k * 10 ms`` on ``time.monotonic_ns()``, where
   ``t_in`` is when ``INMEETING`` was reported. Due times never drift: after a late
   wake-up every frame that is due is produced at once, and each carries its due
   time as ``capture_ns``. For each frame, in this order:

   * the timeline's events at that frame: ``share_stopped``, ``participant_left``,
     ``participant_joined``, ``share_started`` (within a kind, ascending user_id).
     Everyone present at time 0 is announced at frame 0, right after ``INMEETING``;
   * one ``MIXED`` frame, always (silence when nobody is audible, so mixed bytes
     track time): the sum of the frames below in int32, clipped to int16, with its
     capture time in its first 8 bytes when the scenario says ``stamp_capture``;
   * one ``ONE_WAY`` frame per audible participant, ascending user_id;
   * one ``SHARE`` frame (user_id of the sharer) while a share with audio is active;
   * a share video frame (I420) when one is due at the share's ``fps``, counted from
     the frame the share started.

5. At ``ends_at`` (before frame ``ends_at * 100``): ``share_stopped`` if a share is
   active, then ``ENDED`` (or what ``end_reason`` maps to). After
   :meth:`SimDriver.request_leave`, within one frame: ``share_stopped`` if needed,
   ``DISCONNECTING``, then ``ENDED`` with ``MEETING_ENDED`` and
   ``EndMeetingReason_None``. Participants get no ``left`` events at the end.

Invariants: exactly one final status (``ENDED`` or ``FAILED``) is reported and it is
the last event; an exception inside ``run`` is logged and becomes ``FAILED`` with
``INTERNAL_ERROR``, never escaping into the worker.
"""

from __future__ import annotations

import bisect
import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from appliance.drivers import sdk_codes
from appliance.drivers.base import (
    FRAME_MS,
    AudioType,
    Driver,
    DriverEvents,
    JoinRequest,
)
from appliance.drivers.sim import media
from appliance.drivers.sim.scenario import (
    FRAMES_PER_SECOND,
    Scenario,
    load_scenario,
    to_frame,
)
from appliance.errors import ErrorCode
from appliance.status import MeetingStatus

if TYPE_CHECKING:
    from appliance.drivers.sim import screen

logger = logging.getLogger(__name__)

FRAME_NS = FRAME_MS * 1_000_000
LATE_WARNING_NS = 100_000_000
_NEVER = 1 << 62


def _seconds_ns(seconds: float) -> int:
    return round(seconds * 1e9)


@dataclass(frozen=True)
class _State:
    """Who is present, who is heard and what is shared, for a run of frames."""

    present: frozenset[int]  # participant indices
    audible: tuple[int, ...]  # participant indices, ascending user_id
    share: int | None  # share index
    share_audible: bool


_NOBODY = _State(frozenset(), (), None, False)


class Timeline:
    """A scenario's timeline as a few states, each holding from a frame on.

    The state only changes where some interval starts or stops, so the timeline
    stores those frames and their states and finds the state of any frame by
    bisection. With a loop period, frame ``k`` plays the state of ``k % period``;
    without one, the last state lasts forever.
    """

    def __init__(self, scenario: Scenario) -> None:
        people = scenario.participants
        self.period = scenario.loop_frames
        presence = [
            (to_frame(p.joins_at), _frame_or_never(p.leaves_at)) for p in people
        ]
        talks = [[(to_frame(a), to_frame(b)) for a, b in p.speaks] for p in people]
        shares = [(to_frame(s.start), _frame_or_never(s.stop)) for s in scenario.shares]

        edges = {0}
        for spans in [presence, *talks, shares]:
            for start, stop in spans:
                edges.update((start, stop))
        edges.discard(_NEVER)
        if self.period is not None:
            edges = {e for e in edges if e < self.period}

        by_user_id = sorted(range(len(people)), key=lambda i: people[i].user_id)
        self._starts: list[int] = []
        self._states: list[_State] = []
        for edge in sorted(edges):
            present = frozenset(i for i, (a, b) in enumerate(presence) if a <= edge < b)
            audible = tuple(
                i
                for i in by_user_id
                if i in present and any(a <= edge < b for a, b in talks[i])
            )
            share = next((j for j, (a, b) in enumerate(shares) if a <= edge < b), None)
            state = _State(
                present,
                audible,
                share,
                share is not None and scenario.shares[share].with_audio,
            )
            if not self._states or self._states[-1] != state:
                self._starts.append(edge)
                self._states.append(state)

    def state_at(self, k: int) -> _State:
        """The state of frame ``k`` (``k >= 0``)."""
        if self.period is not None:
            k %= self.period
        return self._states[bisect.bisect_right(self._starts, k) - 1]


def _frame_or_never(seconds: float | None) -> int:
    return _NEVER if seconds is None else to_frame(seconds)


def _share_renderers(scenario: Scenario) -> list[screen.ShareRenderer]:
    """One renderer per share of ``scenario``; shares that look alike share one."""
    if not scenario.shares:
        return []
    # Imported here: drawing pictures takes numpy, which a worker whose scenario
    # shares nothing never loads.
    from appliance.drivers.sim import screen

    by_look: dict[tuple[object, ...], screen.ShareRenderer] = {}
    renderers = []
    for s in scenario.shares:
        look = (s.width, s.height, s.pattern, s.fps, s.slide_s)
        if look not in by_look:
            by_look[look] = screen.ShareRenderer(*look)
        renderers.append(by_look[look])
    return renderers


class _Player:
    """Produces the frames and events of one meeting; precomputes on creation."""

    def __init__(self, scenario: Scenario, events: DriverEvents) -> None:
        self.events = events
        self.timeline = Timeline(scenario)
        self.participants = scenario.participants
        self.shares = scenario.shares
        self.stamp_capture = scenario.meeting.stamp_capture
        self.signals = [
            media.make_signal(p.audio, p.amplitude) for p in scenario.participants
        ]
        self.share_signals = [
            media.make_signal(s.audio, s.amplitude) if s.with_audio else None
            for s in scenario.shares
        ]
        self.renderers = _share_renderers(scenario)
        self.mixer = media.Mixer()
        self.state = _NOBODY
        self.share_first_frame = 0
        self.video_frames = 0
        self.frames = 0

    def emit(self, k: int, capture_ns: int) -> None:
        """Everything that happens at frame ``k``."""
        self.frames += 1
        state = self.timeline.state_at(k)
        if state is not self.state:
            self._change(self.state, state, k)
            self.state = state
        events = self.events

        one_way = [(i, self.signals[i].frame(k)) for i in state.audible]
        share_pcm: memoryview | None = None
        if state.share_audible and state.share is not None:
            signal = self.share_signals[state.share]
            assert signal is not None
            share_pcm = signal.frame(k)
        heard = [pcm for _, pcm in one_way]
        if share_pcm is not None:
            heard.append(share_pcm)
        mixed = self.mixer.mix(heard)
        if self.stamp_capture:
            media.stamp(mixed, capture_ns)

        events.audio(AudioType.MIXED, 0, capture_ns, mixed)
        for i, pcm in one_way:
            events.audio(
                AudioType.ONE_WAY, self.participants[i].user_id, capture_ns, pcm
            )
        if state.share is None:
            return
        share = self.shares[state.share]
        if share_pcm is not None:
            events.audio(AudioType.SHARE, share.user_id, capture_ns, share_pcm)
        # Video frame j is due at j / fps seconds of share time, on the 10 ms grid.
        while (k - self.share_first_frame) * share.fps >= (
            self.video_frames * FRAMES_PER_SECOND
        ):
            picture = self.renderers[state.share].frame(self.video_frames)
            events.share_frame(
                share.user_id, capture_ns, share.width, share.height, picture
            )
            self.video_frames += 1

    def finish(self) -> None:
        """Close what is open before the final status: the share, if any."""
        if self.state.share is not None:
            self.events.share_stopped(self.shares[self.state.share].user_id)
            self.state = _State(self.state.present, (), None, False)

    def _change(self, old: _State, new: _State, k: int) -> None:
        events = self.events
        people = self.participants
        if old.share is not None and old.share != new.share:
            events.share_stopped(self.shares[old.share].user_id)
        for i in sorted(old.present - new.present, key=lambda i: people[i].user_id):
            events.participant_left(people[i].user_id, people[i].name)
        for i in sorted(new.present - old.present, key=lambda i: people[i].user_id):
            events.participant_joined(people[i].user_id, people[i].name)
        if new.share is not None and new.share != old.share:
            self.share_first_frame = k
            self.video_frames = 0
            events.share_started(self.shares[new.share].user_id)


class SimDriver(Driver):
    """The ``sim`` driver. One instance plays one meeting; see the module docstring.

    ``request_leave`` may come before ``run`` (the bot then leaves right after
    ``CONNECTING``) or after it returned (no effect).
    """

    name = "sim"

    def __init__(self) -> None:
        self._leave = threading.Event()
        self._final_sent = False

    def request_leave(self) -> None:
        self._leave.set()

    def run(self, request: JoinRequest, events: DriverEvents) -> None:
        try:
            self._run(request, events)
        except Exception as exc:
            logger.exception("meeting %s: simulated driver failed", request.meeting_id)
            if not self._final_sent:
                self._final(
                    events,
                    MeetingStatus.FAILED,
                    ErrorCode.INTERNAL_ERROR,
                    f"simulated driver failed: {type(exc).__name__}: {exc}",
                )

    def _run(self, request: JoinRequest, events: DriverEvents) -> None:
        meeting_id = request.meeting_id
        started = time.monotonic_ns()
        events.status(MeetingStatus.CONNECTING)
        scenario = load_scenario(request.scenario)
        settings = scenario.meeting
        logger.info("meeting %s: playing scenario %r", meeting_id, scenario.origin)
        player = None if settings.sdk_failure else _Player(scenario, events)

        if self._sleep_until(started + _seconds_ns(settings.connect_s)):
            self._leave_meeting(events, None)
            return
        if settings.sdk_failure is not None:
            code, message = _join_failure(settings.sdk_failure)
            logger.info("meeting %s: join fails: %s", meeting_id, message)
            self._final(events, MeetingStatus.FAILED, code, message)
            return
        assert player is not None
        for status, seconds in (
            (MeetingStatus.WAITINGFORHOST, settings.waiting_for_host_s),
            (MeetingStatus.IN_WAITING_ROOM, settings.waiting_room_s),
        ):
            if seconds <= 0:
                continue
            events.status(status)
            if self._sleep_until(time.monotonic_ns() + _seconds_ns(seconds)):
                self._leave_meeting(events, None)
                return

        events.status(MeetingStatus.INMEETING)
        t_in = time.monotonic_ns()
        end_frame = None if settings.ends_at is None else to_frame(settings.ends_at)
        ended, lag_ns = self._play(player, t_in, end_frame, meeting_id)
        logger.info(
            "meeting %s: %d frames played, at most %.1f ms late",
            meeting_id,
            player.frames,
            lag_ns / 1e6,
        )
        if not ended:
            self._leave_meeting(events, player)
            return
        player.finish()
        reason = settings.end_reason
        status, code = sdk_codes.classify_end_reason(reason)
        self._final(events, status, code, sdk_codes.describe(reason))

    def _play(
        self, player: _Player, t_in: int, end_frame: int | None, meeting_id: str
    ) -> tuple[bool, int]:
        """Play frames until ``end_frame`` or a leave request.

        Returns whether the meeting ended on its own, and the worst lateness seen.
        """
        k = 0
        lag_ns = 0
        while True:
            due = t_in + k * FRAME_NS
            now = time.monotonic_ns()
            if now < due:
                # A plain sleep costs half what an event's timed wait does, and a
                # frame is at most 10 ms: a leave is still seen within one frame.
                time.sleep((due - now) / 1e9)
                continue
            if end_frame is not None and k >= end_frame:
                return True, lag_ns
            if self._leave.is_set():
                return False, lag_ns
            if now - due > LATE_WARNING_NS > lag_ns:
                # Once per meeting: a starved driver thread is worth one line, not
                # one per frame it then catches up.
                logger.warning(
                    "meeting %s: frame %d is %.0f ms late; catching up",
                    meeting_id,
                    k,
                    (now - due) / 1e6,
                )
            lag_ns = max(lag_ns, now - due)
            player.emit(k, due)
            k += 1

    def _sleep_until(self, deadline_ns: int) -> bool:
        """Wait until ``deadline_ns``; ``True`` as soon as a leave is requested."""
        while True:
            remaining = deadline_ns - time.monotonic_ns()
            if remaining <= 0:
                return self._leave.is_set()
            if self._leave.wait(remaining / 1e9):
                return True

    def _leave_meeting(self, events: DriverEvents, player: _Player | None) -> None:
        if player is not None:
            player.finish()
        events.status(MeetingStatus.DISCONNECTING)
        reason = "EndMeetingReason_None"
        status, code = sdk_codes.classify_end_reason(reason)
        self._final(events, status, code, sdk_codes.describe(reason))

    def _final(
        self,
        events: DriverEvents,
        status: MeetingStatus,
        code: ErrorCode,
        message: str,
    ) -> None:
        self._final_sent = True
        events.status(status, code, message)


def _join_failure(name: str) -> tuple[ErrorCode, str]:
    """The code and message of a join that fails with the SDK result ``name``."""
    if name.startswith("AUTHRET_"):
        code = sdk_codes.classify_auth_result(name)
        message = f"SDK authentication failed: {name}"
    elif name in sdk_codes.JOIN_FAILURES:
        code = sdk_codes.classify_join_failure(name)
        message = f"joining the meeting failed: {name}"
    else:
        code = ErrorCode.SDK_INIT_FAILED
        message = f"SDK initialisation failed: {name}"
    # A success name never gets here: the scenario maps success to no failure.
    return code or ErrorCode.JOIN_MEETING_FAILED, message
