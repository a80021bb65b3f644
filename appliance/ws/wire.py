"""Bytes of the ``/ws/audio`` stream: WebSocket frames, audio headers, text messages.

Server-to-client WebSocket frames are never masked, so one frame's bytes are the same
for every client. That is what lets the data path build a message once per window and
write the very same bytes to every client that shares a filter.
"""

from __future__ import annotations

import json
import struct
import time
from collections.abc import Sequence

from appliance.drivers.base import CHANNELS, SAMPLE_RATE

OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
_FIN = 0x80

AUDIO_HEADER = struct.Struct("<QQ")


def frame_header(opcode: int, length: int) -> bytes:
    """The header of one final, unmasked WebSocket frame carrying ``length`` bytes."""
    if length < 126:
        return bytes((_FIN | opcode, length))
    if length < 1 << 16:
        return struct.pack("!BBH", _FIN | opcode, 126, length)
    return struct.pack("!BBQ", _FIN | opcode, 127, length)


def audio_message(audio_type: int, user_id: int, pcm: Sequence[bytes]) -> bytes:
    """One binary WebSocket frame: the 16-byte audio header, then the PCM chunks."""
    size = AUDIO_HEADER.size + sum(len(chunk) for chunk in pcm)
    return b"".join(
        (
            frame_header(OP_BINARY, size),
            AUDIO_HEADER.pack(audio_type, user_id),
            *pcm,
        )
    )


def text_message(obj: dict) -> bytes:
    """One text WebSocket frame carrying ``obj`` as compact JSON."""
    data = json.dumps(obj, separators=(",", ":")).encode()
    return frame_header(OP_TEXT, len(data)) + data


def audio_format_message() -> bytes:
    return text_message(
        {
            "type": "audio_format",
            "sample_rate": SAMPLE_RATE,
            "channels": CHANNELS,
            "sample_format": "s16le",
        }
    )


def heartbeat_message() -> bytes:
    return text_message({"type": "heartbeat", "timestamp": round(time.time(), 3)})


def dropped_message(frames: int) -> bytes:
    return text_message({"type": "dropped", "frames": frames})


def error_message(code: str, message: str) -> bytes:
    return text_message({"type": "error", "error": message, "code": code})
