"""The worker protocol: framed binary messages between supervisor and worker.

Theory of operation
-------------------
Supervisor and worker talk over one Unix stream socket. Every message is a frame::

    u32 length (little-endian; counts the kind byte and the payload)
    u8  kind
    ... payload (layout per kind, below)

The first frame each side sends is ``HELLO`` (magic ``HMBW``, protocol version, pid).
A decoder refuses anything before it, and a peer speaking another version. Control
messages (join, status, logs) carry JSON, because they are rare and must stay easy to
extend; data messages (audio, share video) carry fixed little-endian headers and raw
bytes, because they are many and large.

This module is sans-IO: :func:`encode` turns an event into bytes, :class:`Decoder` turns
bytes (in any chunking) into events. It never touches a socket or a clock.

Invariants: a decoder yields events in the order their frames were fed; a payload that
arrived inside one fed chunk is handed out as a view of that chunk (no copy); a payload
split across chunks is assembled once into a buffer of its own. Any malformed frame
raises :class:`ProtocolError`, after which the decoder is unusable.
"""

from __future__ import annotations

import json
import struct
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from appliance.errors import WorkerProtocolError

PROTOCOL_VERSION = 1
MAGIC = b"HMBW"
# Large enough for a 4K I420 frame (3840 * 2160 * 1.5 = 12.4 MB) plus its header.
MAX_FRAME = 16 * 1024 * 1024

_PREFIX = struct.Struct("<IB")
_HELLO = struct.Struct("<4sHI")
_AUDIO = struct.Struct("<BIQ")
_PARTICIPANT = struct.Struct("<BI")
_SHARE_STATE = struct.Struct("<BI")
_SHARE_FRAME = struct.Struct("<IQHH")


class ProtocolError(WorkerProtocolError):
    """The bytes on the worker socket are not a valid frame of this protocol."""


class Kind:
    HELLO = 1
    JOIN = 2
    LEAVE = 3
    STATUS = 4
    PARTICIPANT = 5
    AUDIO = 6
    SHARE_STATE = 7
    SHARE_FRAME = 8
    LOG = 9
    STATS = 10


@dataclass(frozen=True, slots=True)
class Hello:
    pid: int
    version: int = PROTOCOL_VERSION


@dataclass(frozen=True, slots=True)
class Join:
    """Supervisor to worker: join a meeting. ``params`` is a JoinRequest as a dict."""

    params: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Leave:
    """Supervisor to worker: leave the meeting and exit."""


@dataclass(frozen=True, slots=True)
class Status:
    status: str
    error_code: str | None = None
    message: str = ""


@dataclass(frozen=True, slots=True)
class Participant:
    user_id: int
    name: str
    joined: bool


@dataclass(frozen=True, slots=True)
class Audio:
    audio_type: int
    user_id: int
    capture_ns: int
    pcm: bytes | memoryview = field(repr=False)


@dataclass(frozen=True, slots=True)
class ShareState:
    user_id: int
    started: bool


@dataclass(frozen=True, slots=True)
class ShareFrame:
    user_id: int
    capture_ns: int
    width: int
    height: int
    i420: bytes | memoryview = field(repr=False)


@dataclass(frozen=True, slots=True)
class Log:
    level: int
    logger: str
    message: str


@dataclass(frozen=True, slots=True)
class Stats:
    values: dict[str, int]


Event = (
    Hello
    | Join
    | Leave
    | Status
    | Participant
    | Audio
    | ShareState
    | ShareFrame
    | Log
    | Stats
)


def _json(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def encode_parts(event: Event) -> tuple[bytes, bytes | memoryview]:
    """Encode ``event`` as a frame header and a payload to be written after it.

    The payload is returned as given, so a large buffer is not copied here; a writer
    can hand both parts to one ``sendmsg``.
    """
    match event:
        case Audio(audio_type, user_id, capture_ns, pcm):
            head = _AUDIO.pack(audio_type, user_id, capture_ns)
            kind, body = Kind.AUDIO, pcm
        case ShareFrame(user_id, capture_ns, width, height, i420):
            if len(i420) != width * height * 3 // 2:
                expected = width * height * 3 // 2
                raise ValueError(f"I420 {width}x{height} needs {expected} bytes")
            head = _SHARE_FRAME.pack(user_id, capture_ns, width, height)
            kind, body = Kind.SHARE_FRAME, i420
        case Hello(pid, version):
            head, kind, body = _HELLO.pack(MAGIC, version, pid), Kind.HELLO, b""
        case Join(params):
            head, kind, body = _json(params), Kind.JOIN, b""
        case Leave():
            head, kind, body = b"", Kind.LEAVE, b""
        case Status(status, error_code, message):
            obj = {"status": status, "error_code": error_code, "message": message}
            head, kind, body = _json(obj), Kind.STATUS, b""
        case Participant(user_id, name, joined):
            head = _PARTICIPANT.pack(int(joined), user_id) + name.encode()
            kind, body = Kind.PARTICIPANT, b""
        case ShareState(user_id, started):
            head = _SHARE_STATE.pack(int(started), user_id)
            kind, body = Kind.SHARE_STATE, b""
        case Log(level, logger, message):
            obj = {"level": level, "logger": logger, "message": message}
            head, kind, body = _json(obj), Kind.LOG, b""
        case Stats(values):
            head, kind, body = _json(values), Kind.STATS, b""
        case _:
            raise TypeError(f"not a protocol event: {event!r}")
    length = 1 + len(head) + len(body)
    if length > MAX_FRAME:
        raise ValueError(f"frame of {length} bytes exceeds {MAX_FRAME}")
    return _PREFIX.pack(length, kind) + head, body


def encode(event: Event) -> bytes:
    """Encode ``event`` as one frame."""
    head, body = encode_parts(event)
    return head + bytes(body) if body else head


def _parse_json(payload: memoryview, kind: int) -> Any:
    try:
        return json.loads(bytes(payload))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"kind {kind}: payload is not JSON") from exc


def _parse(kind: int, payload: memoryview) -> Event:
    """Turn one frame's payload into an event; views into ``payload`` are kept."""
    try:
        match kind:
            case Kind.AUDIO:
                audio_type, user_id, capture_ns = _AUDIO.unpack_from(payload)
                if audio_type > 2:
                    raise ProtocolError(f"unknown audio type {audio_type}")
                return Audio(audio_type, user_id, capture_ns, payload[_AUDIO.size :])
            case Kind.SHARE_FRAME:
                user_id, capture_ns, width, height = _SHARE_FRAME.unpack_from(payload)
                i420 = payload[_SHARE_FRAME.size :]
                if len(i420) != width * height * 3 // 2:
                    raise ProtocolError(f"I420 {width}x{height} of {len(i420)} bytes")
                return ShareFrame(user_id, capture_ns, width, height, i420)
            case Kind.HELLO:
                magic, version, pid = _HELLO.unpack(payload)
                if magic != MAGIC:
                    raise ProtocolError("bad magic: not a worker protocol peer")
                return Hello(pid=pid, version=version)
            case Kind.JOIN:
                params = _parse_json(payload, kind)
                if not isinstance(params, dict):
                    raise ProtocolError("join parameters are not an object")
                return Join(params)
            case Kind.LEAVE:
                if len(payload):
                    raise ProtocolError("leave carries no payload")
                return Leave()
            case Kind.STATUS:
                obj = _parse_json(payload, kind)
                return Status(
                    str(obj["status"]), obj["error_code"], str(obj["message"])
                )
            case Kind.PARTICIPANT:
                joined, user_id = _PARTICIPANT.unpack_from(payload)
                name = bytes(payload[_PARTICIPANT.size :]).decode()
                return Participant(user_id, name, bool(joined))
            case Kind.SHARE_STATE:
                started, user_id = _SHARE_STATE.unpack(payload)
                return ShareState(user_id, bool(started))
            case Kind.LOG:
                obj = _parse_json(payload, kind)
                return Log(int(obj["level"]), str(obj["logger"]), str(obj["message"]))
            case Kind.STATS:
                obj = _parse_json(payload, kind)
                if not isinstance(obj, dict):
                    raise ProtocolError("stats are not an object")
                return Stats({str(k): int(v) for k, v in obj.items()})
    except ProtocolError:
        raise
    except (struct.error, KeyError, TypeError, ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"malformed payload of kind {kind}: {exc}") from exc
    raise ProtocolError(f"unknown frame kind {kind}")


class Decoder:
    """Bytes in, events out: feed chunks as they arrive, pop events as they complete.

    ``peer_hello`` is what the peer's first frame said, once it arrived.
    """

    def __init__(self) -> None:
        self._events: deque[Event] = deque()
        # An incomplete frame: its bytes so far. Once its prefix is known, the buffer
        # is allocated at the frame's full size so it is filled without regrowing.
        self._partial = bytearray()
        self._partial_len = 0
        self._filled = 0
        self._broken = False
        self.peer_hello: Hello | None = None

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Add bytes from the peer. An empty chunk means nothing (EOF is the caller's).

        Payloads may be views of ``data``: the caller must not modify it afterwards.
        """
        if self._broken:
            raise ProtocolError("decoder used after a protocol error")
        try:
            self._feed(memoryview(data).cast("B"))
        except ProtocolError:
            self._broken = True
            raise

    def next_event(self) -> Event | None:
        """The next complete event, or ``None`` when more bytes are needed."""
        return self._events.popleft() if self._events else None

    def __iter__(self) -> Decoder:
        return self

    def __next__(self) -> Event:
        if not self._events:
            raise StopIteration
        return self._events.popleft()

    @property
    def has_partial_frame(self) -> bool:
        """True when bytes of an unfinished frame are buffered (EOF now is an error)."""
        return self._partial_len > 0 or len(self._partial) > 0

    def _feed(self, view: memoryview) -> None:
        if self.has_partial_frame:
            view = self._fill_partial(view)
        while len(view) >= _PREFIX.size:
            length, kind = _PREFIX.unpack_from(view)
            self._check_length(length)
            total = 4 + length
            if len(view) < total:
                break
            self._emit(kind, view[_PREFIX.size : total])
            view = view[total:]
        if len(view):
            self._fill_partial(view)

    def _fill_partial(self, view: memoryview) -> memoryview:
        """Move bytes of the pending frame from ``view``; return what is left over."""
        if not self._partial_len:
            need = _PREFIX.size - len(self._partial)
            self._partial += view[:need]
            view = view[need:]
            if len(self._partial) < _PREFIX.size:
                return view
            length, _ = _PREFIX.unpack_from(self._partial)
            self._check_length(length)
            self._partial_len = 4 + length
            frame = bytearray(self._partial_len)
            frame[: _PREFIX.size] = self._partial
            self._partial = frame
            self._filled = _PREFIX.size
        need = self._partial_len - self._filled
        take = min(need, len(view))
        self._partial[self._filled : self._filled + take] = view[:take]
        self._filled += take
        self._emit_if_complete()
        return view[take:]

    def _emit_if_complete(self) -> None:
        if self._partial_len and self._filled == self._partial_len:
            frame = memoryview(self._partial)
            self._partial = bytearray()
            self._partial_len = 0
            self._emit(frame[4], frame[_PREFIX.size :])

    def receive_buffer(self) -> memoryview | None:
        """The unfilled rest of the frame being assembled, to read straight into.

        ``None`` unless a frame's length is known and bytes of it are missing. A
        transport that reads into this view (``recv_into``) and then reports the count
        with :meth:`received` hands a large frame over with no copy of its own.
        """
        if not self._partial_len or self._broken:
            return None
        return memoryview(self._partial)[self._filled :]

    def received(self, count: int) -> None:
        """``count`` bytes were written into :meth:`receive_buffer`'s view."""
        if self._broken:
            raise ProtocolError("decoder used after a protocol error")
        if not 0 <= count <= self._partial_len - self._filled:
            raise ValueError(f"received {count} bytes into a smaller buffer")
        self._filled += count
        try:
            self._emit_if_complete()
        except ProtocolError:
            self._broken = True
            raise

    @staticmethod
    def _check_length(length: int) -> None:
        if length < 1 or length > MAX_FRAME:
            raise ProtocolError(f"frame length {length} out of range")

    def _emit(self, kind: int, payload: memoryview) -> None:
        event = _parse(kind, payload)
        if self.peer_hello is None:
            if not isinstance(event, Hello):
                raise ProtocolError(f"expected HELLO first, got kind {kind}")
            if event.version != PROTOCOL_VERSION:
                raise ProtocolError(
                    f"peer speaks protocol version {event.version}, "
                    f"this side {PROTOCOL_VERSION}"
                )
            self.peer_hello = event
        elif isinstance(event, Hello):
            raise ProtocolError("HELLO sent twice")
        self._events.append(event)
