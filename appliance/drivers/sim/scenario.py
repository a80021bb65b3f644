"""Scenarios for the simulated driver: what happens in a simulated meeting, as TOML.

A scenario is a TOML file. Give a meeting one with the ``scenario`` field of the join
request: a built-in name (``default``, ``four_speakers``, ``waiting_room``,
``host_ends``, ``auth_failed``, ``wrong_passcode``, ``meeting_over``,
``share_slides``) or a path to a ``.toml`` file. No scenario means ``default``.

Time
----
All times are seconds after the bot reached ``MEETING_STATUS_INMEETING`` (time 0).
Audio comes in 10 ms frames of 320 samples (32 kHz, mono, S16LE); frame ``k`` covers
meeting time ``[k * 10 ms, (k + 1) * 10 ms)``. Every interval ``[start, stop)`` is
applied to whole frames: a frame belongs to it when the frame's *start* lies inside,
so an interval shorter than 10 ms may cover no frame at all.

Top level
---------
``description``
    Optional free text.

``[[participant]]`` (any number, also none)
-------------------------------------------
``user_id``
    Required integer, 1 to 2**32 - 1, unique. Zoom numbers users 16778240,
    16779264, 16780288, ... (16778240 + 1024 * i).
``name``
    Display name; default ``"User <user_id>"``.
``audio``
    What the participant sounds like; one of ``{ tone_hz = 440 }`` (a sine, above 0
    and below 16000 Hz), ``{ file = "clip.wav" }`` (a PCM WAV file of any rate,
    channel count and 8/16/24/32-bit sample width, mixed down to mono, resampled to
    32 kHz and looped; a relative path is relative to the scenario file's folder) or
    ``{ noise_seed = N }`` (white noise from a seeded generator of our own, the same
    bytes on every machine and numpy version; a 10 s clip, looped). Default: a tone
    of 440 Hz.
``amplitude``
    Peak level as a fraction of full scale, 0 to 1; default 0.25. A tone peaks at
    ``round(amplitude * 32767)``; noise is uniform within that peak; a file is
    scaled so that its loudest sample reaches it (a silent file stays silent).
``speaks``
    Intervals ``[[start, stop], ...]`` when the participant talks; default none.
    Intervals may overlap. The participant is audible only while present.
``joins_at`` / ``leaves_at``
    When the participant is present: from ``joins_at`` (default 0: already in the
    meeting when the bot arrives) to ``leaves_at`` (default: never leaves).

A participant's audio is one continuous signal indexed by meeting time, not by the
start of their speech: sample ``n`` of a tone is
``round(amplitude * 32767 * sin(2 * pi * tone_hz * n / 32000))``; of a file or noise,
``clip[n % len(clip)]``.

``[[share]]`` (any number; at most one active at a time)
--------------------------------------------------------
``user_id``
    Required; the sharer, a participant who must be present for the whole share.
``start`` / ``stop``
    Required start; stop defaults to "until the end" (of the loop period when
    looping).
``width`` / ``height``
    Even integers, 16 to 8192; default 1280 x 720. Frames are I420.
``fps``
    Frames per second, above 0 and at most 100; default 10.
``pattern``
    ``"moving"`` (default): colour bars with a white bar that moves every frame.
    ``"slides"``: still pictures that change every ``slide_s`` seconds (default
    3.0) of share time and are byte-identical in between, like a slide deck.
``with_audio``
    Boolean, default false: the share carries audio (``SHARE`` frames).
``audio`` / ``amplitude``
    The share's sound, as for a participant; default a tone of 660 Hz at 0.25.

``[meeting]``
-------------
``connect_s``
    Time in ``MEETING_STATUS_CONNECTING``; default 0.05. Keep it small: the time
    from the join request to ``INMEETING`` includes it.
``join_result``
    ``"ok"`` (default), ``"auth_failed"`` (``AUTHRET_JWTTOKENWRONG``),
    ``"wrong_passcode"`` (``MEETING_FAIL_PASSWORD_ERR``), ``"meeting_over"``
    (``MEETING_FAIL_MEETING_OVER``), ``"sdk_init_failed"``
    (``SDKERR_UNINITIALIZE``), or any failing ``AUTHRET_*`` or ``MEETING_FAIL_*``
    name of the Zoom SDK. A failure ends in ``MEETING_STATUS_FAILED`` after
    ``connect_s``, with the error code the real SDK would give.
``waiting_for_host_s``
    Seconds in ``MEETING_STATUS_WAITINGFORHOST`` before the next status; default 0.
``waiting_room_s``
    Seconds in ``MEETING_STATUS_IN_WAITING_ROOM`` before admission; default 0.
``ends_at``
    When the meeting ends for the bot (the host ends it); default: it runs until the
    bot leaves. Exactly ``ends_at * 100`` mixed frames are delivered (rounded up).
``end_reason``
    The SDK's ``EndMeetingReason_*`` name reported at ``ends_at``; default
    ``"EndMeetingReason_EndByHost"``. ``"EndMeetingReason_NetworkBroken"`` ends in
    ``MEETING_STATUS_FAILED``, as with the real SDK.
``loop``
    Boolean, default false: the timeline of speaking, shares, joins and leaves
    repeats every ``loop_s`` seconds (``ends_at`` does not repeat).
``loop_s``
    The loop period; default the latest time named anywhere in the timeline. It must
    not be shorter than that. A looping scenario that names no time at all has
    nothing to repeat and behaves as if ``loop`` were false.
``stamp_capture``
    Boolean, default false. When true, the first 8 bytes of every ``MIXED`` frame
    are overwritten with its capture time (``time.monotonic_ns()`` at which the
    frame was due) as uint64 little-endian, so a benchmark client can measure
    latency from the PCM alone. Those 4 samples are no longer audio; ``ONE_WAY``
    and ``SHARE`` frames are never stamped.

Every key is checked: an unknown key, a wrong type, an empty or negative interval, a
duplicate ``user_id`` or a missing audio file raises :class:`InvalidRequest` naming
the scenario and the key.
"""

from __future__ import annotations

import itertools
import logging
import math
import tomllib
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NoReturn

from appliance.drivers import sdk_codes
from appliance.drivers.base import FRAME_MS
from appliance.errors import InvalidRequest

logger = logging.getLogger(__name__)

BUILTIN_DIR = Path(__file__).resolve().parent / "scenarios"
DEFAULT_SCENARIO = "default"

FRAMES_PER_SECOND = 1000 // FRAME_MS
MAX_USER_ID = 2**32 - 1
MAX_SIDE = 8192

# Friendly names for the failures a user most often wants to rehearse.
JOIN_RESULT_ALIASES: dict[str, str | None] = {
    "ok": None,
    "auth_failed": "AUTHRET_JWTTOKENWRONG",
    "wrong_passcode": "MEETING_FAIL_PASSWORD_ERR",
    "meeting_over": "MEETING_FAIL_MEETING_OVER",
    "sdk_init_failed": "SDKERR_UNINITIALIZE",
}

AudioKind = Literal["tone", "file", "noise"]
Pattern = Literal["moving", "slides"]


def to_frame(seconds: float) -> int:
    """The index of the first frame whose start is at or after ``seconds``.

    A tolerance of a microsecond absorbs binary rounding, so ``0.07`` is frame 7 and
    not frame 8.
    """
    return max(0, math.ceil(seconds * FRAMES_PER_SECOND - 1e-6))


@dataclass(frozen=True)
class AudioSource:
    """One sound: exactly one of ``tone_hz``, ``file`` or ``noise_seed`` is set."""

    kind: AudioKind
    tone_hz: float | None = None
    file: Path | None = None
    noise_seed: int | None = None


@dataclass(frozen=True)
class Participant:
    user_id: int
    name: str
    audio: AudioSource
    amplitude: float
    speaks: tuple[tuple[float, float], ...]
    joins_at: float
    leaves_at: float | None


@dataclass(frozen=True)
class Share:
    user_id: int
    start: float
    stop: float | None
    width: int
    height: int
    fps: float
    pattern: Pattern
    slide_s: float
    with_audio: bool
    audio: AudioSource
    amplitude: float


@dataclass(frozen=True)
class MeetingSettings:
    """The ``[meeting]`` table, with defaults applied.

    ``sdk_failure`` is the SDK result name that ``join_result`` stands for, or
    ``None`` when the join succeeds. ``loop_s`` is ``None`` when the timeline does
    not repeat (including a looping scenario with nothing to repeat).
    """

    connect_s: float = 0.05
    join_result: str = "ok"
    sdk_failure: str | None = None
    waiting_for_host_s: float = 0.0
    waiting_room_s: float = 0.0
    ends_at: float | None = None
    end_reason: str = "EndMeetingReason_EndByHost"
    loop_s: float | None = None
    stamp_capture: bool = False


@dataclass(frozen=True)
class Scenario:
    """A validated scenario.

    ``origin`` is what the user gave (a name or a path), used in messages. ``path``
    is the resolved file, when there is one: hand it to another process rather than
    a relative path, whose meaning depends on the working directory.
    """

    origin: str
    path: Path | None
    description: str
    participants: tuple[Participant, ...]
    shares: tuple[Share, ...]
    meeting: MeetingSettings

    @property
    def loop_frames(self) -> int | None:
        """The loop period in frames, or ``None`` when the timeline does not repeat."""
        if self.meeting.loop_s is None:
            return None
        return max(1, to_frame(self.meeting.loop_s))


def builtin_names() -> list[str]:
    """The names of the built-in scenarios, sorted."""
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.toml"))


def load_scenario(name_or_path: str | None) -> Scenario:
    """Load and validate a scenario by built-in name or by path.

    ``None`` or ``""`` means the built-in ``default``. A string without ``/`` that
    does not end in ``.toml`` is a built-in name; anything else is a path (``~`` is
    expanded; a relative path is relative to the working directory). Only file
    headers of audio clips are read, so this is cheap enough to run per request.

    Raises :class:`InvalidRequest` for an unknown name, an unreadable file or an
    invalid scenario.
    """
    if not name_or_path:
        name_or_path = DEFAULT_SCENARIO
    if "/" not in name_or_path and not name_or_path.endswith(".toml"):
        path = BUILTIN_DIR / f"{name_or_path}.toml"
        if not name_or_path.isidentifier() or not path.is_file():
            raise InvalidRequest(
                f"unknown built-in scenario {name_or_path!r}; built-ins are "
                f"{', '.join(builtin_names())}, or give a path to a .toml file"
            )
    else:
        path = Path(name_or_path).expanduser().resolve()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"scenario {name_or_path!r}: cannot read: {exc}") from exc
    scenario = parse_scenario(text, path.parent, name_or_path)
    return _replace_path(scenario, path)


def parse_scenario(text: str, base_dir: Path, origin: str) -> Scenario:
    """Parse and validate scenario TOML.

    ``base_dir`` is where relative audio file paths point; ``origin`` names the
    scenario in error messages. Audio files must exist and have a readable WAV
    header; they are not decoded here. Raises :class:`InvalidRequest`.
    """
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidRequest(f"scenario {origin!r}: not valid TOML: {exc}") from exc
    return _Parser(origin, base_dir).scenario(doc)


def _replace_path(scenario: Scenario, path: Path) -> Scenario:
    return Scenario(
        origin=scenario.origin,
        path=path,
        description=scenario.description,
        participants=scenario.participants,
        shares=scenario.shares,
        meeting=scenario.meeting,
    )


_REQUIRED: Any = object()


class _Table:
    """Takes typed keys out of one TOML table, then rejects whatever is left."""

    def __init__(self, parser: _Parser, where: str, value: Any) -> None:
        self._parser = parser
        self.where = where
        if not isinstance(value, dict):
            parser.fail(where, f"must be a table, not {_type_name(value)}")
        self._items = dict(value)

    def fail(self, key: str, problem: str) -> NoReturn:
        self._parser.fail(f"{self.where}.{key}" if self.where else key, problem)

    def has(self, key: str) -> bool:
        return key in self._items

    def raw(self, key: str, default: Any = _REQUIRED) -> Any:
        if key in self._items:
            return self._items.pop(key)
        if default is _REQUIRED:
            self.fail(key, "is required")
        return default

    def number(
        self,
        key: str,
        default: Any = _REQUIRED,
        *,
        low: float = 0.0,
        high: float = math.inf,
        low_open: bool = False,
    ) -> Any:
        value = self.raw(key, default)
        if value is default and default is not _REQUIRED:
            return value
        return self._parser.check_number(
            self._key(key), value, low=low, high=high, low_open=low_open
        )

    def integer(
        self, key: str, default: Any = _REQUIRED, *, low: int, high: int
    ) -> Any:
        value = self.raw(key, default)
        if value is default and default is not _REQUIRED:
            return value
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(key, f"must be an integer, not {_type_name(value)}")
        if not low <= value <= high:
            self.fail(key, f"must be between {low} and {high}, not {value}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.raw(key, default)
        if not isinstance(value, bool):
            self.fail(key, f"must be true or false, not {_type_name(value)}")
        return value

    def string(self, key: str, default: Any = _REQUIRED) -> Any:
        value = self.raw(key, default)
        if value is default and default is not _REQUIRED:
            return value
        if not isinstance(value, str):
            self.fail(key, f"must be a string, not {_type_name(value)}")
        return value

    def finish(self) -> None:
        if self._items:
            unknown = ", ".join(sorted(self._items))
            self._parser.fail(self.where or "top level", f"unknown key(s): {unknown}")

    def _key(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key


class _Parser:
    def __init__(self, origin: str, base_dir: Path) -> None:
        self.origin = origin
        self.base_dir = base_dir

    def fail(self, where: str, problem: str) -> NoReturn:
        raise InvalidRequest(f"scenario {self.origin!r}: {where}: {problem}")

    def check_number(
        self,
        where: str,
        value: Any,
        *,
        low: float = 0.0,
        high: float = math.inf,
        low_open: bool = False,
    ) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(where, f"must be a number, not {_type_name(value)}")
        if not math.isfinite(value):
            self.fail(where, f"must be finite, not {value}")
        too_low = value <= low if low_open else value < low
        if too_low or value > high:
            bound = "above" if low_open else "at least"
            limit = "" if high == math.inf else f" and at most {high}"
            self.fail(where, f"must be {bound} {low}{limit}, not {value}")
        return float(value)

    def scenario(self, doc: dict[str, Any]) -> Scenario:
        top = _Table(self, "", doc)
        description = top.string("description", "")
        participants = tuple(
            self.participant(f"participant[{i}]", item)
            for i, item in enumerate(self.array(top, "participant"))
        )
        shares = tuple(
            self.share(f"share[{i}]", item)
            for i, item in enumerate(self.array(top, "share"))
        )
        meeting_table = _Table(self, "meeting", top.raw("meeting", {}))
        top.finish()
        self.check_people(participants, shares)
        meeting = self.meeting(meeting_table, participants, shares)
        return Scenario(
            origin=self.origin,
            path=None,
            description=description,
            participants=participants,
            shares=shares,
            meeting=meeting,
        )

    def array(self, table: _Table, key: str) -> list[Any]:
        value = table.raw(key, [])
        if not isinstance(value, list):
            table.fail(key, f"must be an array of tables ([[{key}]])")
        return value

    def participant(self, where: str, value: Any) -> Participant:
        t = _Table(self, where, value)
        user_id = t.integer("user_id", low=1, high=MAX_USER_ID)
        name = t.string("name", f"User {user_id}")
        audio = self.audio(f"{where}.audio", t.raw("audio", {"tone_hz": 440}))
        amplitude = t.number("amplitude", 0.25, high=1.0)
        speaks = self.intervals(f"{where}.speaks", t.raw("speaks", []))
        joins_at = t.number("joins_at", 0.0)
        leaves_at = t.number("leaves_at", None)
        t.finish()
        if leaves_at is not None and leaves_at <= joins_at:
            self.fail(
                f"{where}.leaves_at",
                f"must be later than joins_at ({joins_at}), not {leaves_at}",
            )
        return Participant(
            user_id=user_id,
            name=name,
            audio=audio,
            amplitude=float(amplitude),
            speaks=speaks,
            joins_at=float(joins_at),
            leaves_at=leaves_at,
        )

    def share(self, where: str, value: Any) -> Share:
        t = _Table(self, where, value)
        user_id = t.integer("user_id", low=1, high=MAX_USER_ID)
        start = t.number("start")
        stop = t.number("stop", None)
        width = t.integer("width", 1280, low=16, high=MAX_SIDE)
        height = t.integer("height", 720, low=16, high=MAX_SIDE)
        fps = t.number("fps", 10.0, high=float(FRAMES_PER_SECOND), low_open=True)
        pattern = t.string("pattern", "moving")
        slide_s = t.number("slide_s", 3.0, low_open=True)
        with_audio = t.boolean("with_audio", False)
        audio = self.audio(f"{where}.audio", t.raw("audio", {"tone_hz": 660}))
        amplitude = t.number("amplitude", 0.25, high=1.0)
        t.finish()
        if stop is not None and stop <= start:
            self.fail(
                f"{where}.stop", f"must be later than start ({start}), not {stop}"
            )
        for key, side in (("width", width), ("height", height)):
            if side % 2:
                self.fail(f"{where}.{key}", f"must be even (I420), not {side}")
        if pattern not in ("moving", "slides"):
            self.fail(
                f"{where}.pattern", f'must be "moving" or "slides", not {pattern!r}'
            )
        return Share(
            user_id=user_id,
            start=float(start),
            stop=stop,
            width=width,
            height=height,
            fps=float(fps),
            pattern=pattern,
            slide_s=float(slide_s),
            with_audio=with_audio,
            audio=audio,
            amplitude=float(amplitude),
        )

    def audio(self, where: str, value: Any) -> AudioSource:
        t = _Table(self, where, value)
        given = [k for k in ("tone_hz", "file", "noise_seed") if t.has(k)]
        if len(given) != 1:
            self.fail(where, "needs exactly one of tone_hz, file or noise_seed")
        key = given[0]
        if key == "tone_hz":
            tone_hz = t.number("tone_hz", high=15999.0, low_open=True)
            t.finish()
            return AudioSource(kind="tone", tone_hz=tone_hz)
        if key == "noise_seed":
            seed = t.integer("noise_seed", low=0, high=2**64 - 1)
            t.finish()
            return AudioSource(kind="noise", noise_seed=seed)
        file = t.string("file")
        t.finish()
        path = (self.base_dir / Path(file).expanduser()).resolve()
        self.check_wav(f"{where}.file", path)
        return AudioSource(kind="file", file=path)

    def check_wav(self, where: str, path: Path) -> None:
        # Only the header: decoding and resampling wait for the worker.
        if not path.is_file():
            self.fail(where, f"no such file: {path}")
        try:
            with wave.open(str(path), "rb") as clip:
                width = clip.getsampwidth()
                frames = clip.getnframes()
                rate = clip.getframerate()
        except (wave.Error, EOFError, OSError) as exc:
            self.fail(where, f"not a PCM WAV file we can read ({path}): {exc}")
        if width not in (1, 2, 3, 4):
            self.fail(where, f"unsupported sample width {width} bytes in {path}")
        if frames == 0 or rate <= 0:
            self.fail(where, f"no audio in {path}")

    def intervals(self, where: str, value: Any) -> tuple[tuple[float, float], ...]:
        if not isinstance(value, list):
            self.fail(where, "must be an array of [start, stop] pairs")
        out = []
        for i, pair in enumerate(value):
            here = f"{where}[{i}]"
            if not isinstance(pair, list) or len(pair) != 2:
                self.fail(here, f"must be a [start, stop] pair, not {pair!r}")
            start = self.check_number(here, pair[0])
            stop = self.check_number(here, pair[1])
            if start >= stop:
                self.fail(here, f"start {start} must be less than stop {stop}")
            out.append((start, stop))
        return tuple(out)

    def check_people(
        self, participants: tuple[Participant, ...], shares: tuple[Share, ...]
    ) -> None:
        by_id: dict[int, Participant] = {}
        for i, p in enumerate(participants):
            if p.user_id in by_id:
                self.fail(f"participant[{i}].user_id", f"duplicate user_id {p.user_id}")
            by_id[p.user_id] = p
        ordered = sorted(enumerate(shares), key=lambda item: item[1].start)
        for (_, a), (j, b) in itertools.pairwise(ordered):
            if a.stop is None or a.stop > b.start:
                self.fail(
                    f"share[{j}].start",
                    f"overlaps another share (from {a.start}); only one share can "
                    "be active at a time",
                )
        for i, s in enumerate(shares):
            sharer = by_id.get(s.user_id)
            if sharer is None:
                self.fail(f"share[{i}].user_id", f"no participant has {s.user_id}")
            if s.start < sharer.joins_at:
                self.fail(
                    f"share[{i}].start",
                    f"the sharer joins only at {sharer.joins_at}, after {s.start}",
                )
            if sharer.leaves_at is not None and (
                s.stop is None or s.stop > sharer.leaves_at
            ):
                self.fail(
                    f"share[{i}].stop",
                    f"must be at most the sharer's leaves_at ({sharer.leaves_at})",
                )

    def meeting(
        self,
        t: _Table,
        participants: tuple[Participant, ...],
        shares: tuple[Share, ...],
    ) -> MeetingSettings:
        connect_s = t.number("connect_s", 0.05)
        join_result = t.string("join_result", "ok")
        waiting_for_host_s = t.number("waiting_for_host_s", 0.0)
        waiting_room_s = t.number("waiting_room_s", 0.0)
        ends_at = t.number("ends_at", None)
        end_reason = t.string("end_reason", "EndMeetingReason_EndByHost")
        loop = t.boolean("loop", False)
        loop_s = t.number("loop_s", None, low_open=True)
        stamp_capture = t.boolean("stamp_capture", False)
        t.finish()

        if join_result in JOIN_RESULT_ALIASES:
            sdk_failure = JOIN_RESULT_ALIASES[join_result]
        elif (
            sdk_codes.AUTH_RESULTS.get(join_result) is not None
            or sdk_codes.JOIN_FAILURES.get(join_result) is not None
        ):
            sdk_failure = join_result
        else:
            choices = ", ".join(JOIN_RESULT_ALIASES)
            self.fail(
                "meeting.join_result",
                f"must be one of {choices} or a failing AUTHRET_* / MEETING_FAIL_* "
                f"name of the SDK, not {join_result!r}",
            )
        if end_reason not in sdk_codes.END_REASONS or end_reason.endswith("_None"):
            self.fail(
                "meeting.end_reason",
                f"must be an EndMeetingReason_* name other than EndMeetingReason_None"
                f", not {end_reason!r}",
            )

        latest = _latest_time(participants, shares)
        if loop_s is not None and loop_s < latest:
            self.fail(
                "meeting.loop_s",
                f"must be at least {latest}, the latest time in the timeline, "
                f"not {loop_s}",
            )
        if not loop:
            loop_s = None
        elif loop_s is None and latest > 0:
            loop_s = latest
        if loop_s is not None:
            for i, p in enumerate(participants):
                if p.joins_at >= loop_s:
                    self.fail(
                        f"participant[{i}].joins_at",
                        f"must be earlier than the loop period {loop_s}",
                    )
            for i, s in enumerate(shares):
                if s.start >= loop_s:
                    self.fail(
                        f"share[{i}].start",
                        f"must be earlier than the loop period {loop_s}",
                    )
        return MeetingSettings(
            connect_s=connect_s,
            join_result=join_result,
            sdk_failure=sdk_failure,
            waiting_for_host_s=waiting_for_host_s,
            waiting_room_s=waiting_room_s,
            ends_at=ends_at,
            end_reason=end_reason,
            loop_s=loop_s,
            stamp_capture=stamp_capture,
        )


def _latest_time(
    participants: tuple[Participant, ...], shares: tuple[Share, ...]
) -> float:
    times = [0.0]
    for p in participants:
        times.append(p.joins_at)
        if p.leaves_at is not None:
            times.append(p.leaves_at)
        times.extend(stop for _, stop in p.speaks)
    for s in shares:
        times.append(s.start if s.stop is None else s.stop)
    return max(times)


def _type_name(value: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    for kind, name in names.items():
        if type(value) is kind:
            return name
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__
