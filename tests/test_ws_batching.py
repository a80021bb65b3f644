"""Batching windows, client queues and wire bytes, without sockets or clocks."""

from __future__ import annotations

import json
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from wsproto.frame_protocol import FrameProtocol, Opcode

from appliance.ws import wire
from appliance.ws.batching import Batcher, ClientQueue, Message


def parse_frames(data: bytes) -> list[tuple[Opcode, bytes]]:
    """Parse server frames with wsproto's own parser (a client-side view)."""
    protocol = FrameProtocol(client=True, extensions=[])
    protocol.receive_bytes(data)
    return [
        (f.opcode, f.payload if isinstance(f.payload, str) else bytes(f.payload))
        for f in protocol.received_frames()
    ]


def frame(n: int) -> bytes:
    return bytes([n % 256]) * 640


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 70000])
def test_frame_headers_parse_with_a_real_websocket_parser(size):
    payload = b"x" * size
    data = wire.frame_header(wire.OP_BINARY, size) + payload

    assert parse_frames(data) == [(Opcode.BINARY, payload)]


def test_audio_message_has_one_16_byte_header():
    message = wire.audio_message(1, 16778240, [frame(1), frame(2)])

    [(opcode, payload)] = parse_frames(message)

    assert opcode == Opcode.BINARY
    assert struct.unpack_from("<QQ", payload) == (1, 16778240)
    assert payload[16:] == frame(1) + frame(2)


def test_text_messages():
    [(opcode, payload)] = parse_frames(wire.dropped_message(7))

    assert opcode == Opcode.TEXT
    assert json.loads(payload) == {"type": "dropped", "frames": 7}


def test_window_zero_sends_each_frame_at_once():
    batcher = Batcher(0)

    messages = batcher.add(0, 0, frame(1), now=5.0)

    assert messages == [Message(wire.audio_message(0, 0, [frame(1)]), 1)]
    assert batcher.deadline is None


def test_a_window_joins_consecutive_frames_per_stream():
    batcher = Batcher(0.1)
    assert batcher.add(0, 0, frame(1), now=1.0) == []
    assert batcher.add(1, 7, frame(2), now=1.01) == []
    assert batcher.add(0, 0, frame(3), now=1.02) == []
    assert batcher.deadline == pytest.approx(1.1)

    assert batcher.poll(now=1.09) == []
    messages = batcher.poll(now=1.1)

    assert messages == [
        Message(wire.audio_message(0, 0, [frame(1), frame(3)]), 2),
        Message(wire.audio_message(1, 7, [frame(2)]), 1),
    ]
    assert batcher.deadline is None
    assert batcher.poll(now=5.0) == []


def test_windows_sit_on_a_fixed_grid():
    batcher = Batcher(0.1)
    batcher.add(0, 0, frame(1), now=1.04)
    assert batcher.deadline == pytest.approx(1.1)
    batcher.poll(now=1.2)

    batcher.add(0, 0, frame(2), now=1.25)
    assert batcher.deadline == pytest.approx(1.3)
    batcher.poll(now=1.3)

    batcher.add(0, 0, frame(3), now=0.3)  # 0.3 / 0.1 is 2.9999999999999996
    assert batcher.deadline == pytest.approx(0.4)


def audio(frames: int, tag: int = 0) -> Message:
    return Message(bytes([tag]) * (16 + 640 * frames), frames)


def drain(queue: ClientQueue, chunk: int = 10**9) -> bytes:
    out = bytearray()
    while queue:
        data = b"".join(bytes(b) for b in queue.buffers())[:chunk]
        out += data
        queue.consumed(len(data))
    return bytes(out)


def test_queue_drops_oldest_audio_but_keeps_control_and_newest():
    queue = ClientQueue(max_frames=3)
    queue.push_control(b"format")
    for tag in range(5):
        queue.push_audio(audio(1, tag))

    assert queue.enforce_limit() == 2

    assert queue.frames_dropped == 2
    assert queue.take_drop_report() == 2
    assert queue.take_drop_report() == 0
    assert (
        drain(queue)
        == b"format" + audio(1, 2).data + audio(1, 3).data + audio(1, 4).data
    )


def test_a_partly_written_message_is_never_dropped():
    queue = ClientQueue(max_frames=1)
    queue.push_audio(audio(1, 1))
    queue.consumed(5)
    queue.push_audio(audio(1, 2))
    queue.push_audio(audio(1, 3))

    assert queue.enforce_limit() == 1

    rest = drain(queue)
    assert rest == audio(1, 1).data[5:] + audio(1, 3).data


def test_the_newest_message_is_kept_even_above_the_bound():
    queue = ClientQueue(max_frames=2)
    queue.push_audio(audio(10))

    assert queue.enforce_limit() == 0
    assert queue.queued_frames == 10


def test_control_items_report_when_written():
    queue = ClientQueue(max_frames=10)
    item = queue.push_control(b"close-frame")
    queue.consumed(5)
    assert not item.written

    queue.consumed(6)

    assert item.written
    assert not queue


@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("audio"), st.integers(1, 5)),
            st.tuples(st.just("control"), st.integers(1, 50)),
            st.tuples(st.just("write"), st.integers(0, 5000)),
        ),
        max_size=60,
    ),
    st.integers(1, 12),
)
def test_queue_output_is_always_whole_messages_in_order(ops, max_frames):
    """Whatever is dropped, the bytes out are a subsequence of whole messages."""
    queue = ClientQueue(max_frames)
    pushed, out = [], bytearray()
    for number, (op, arg) in enumerate(ops):
        if op == "audio":
            message = audio(arg, number)
            pushed.append(message.data)
            queue.push_audio(message)
            queue.enforce_limit()
        elif op == "control":
            data = bytes([255 - number % 200]) * arg
            pushed.append(data)
            queue.push_control(data)
        else:
            data = b"".join(bytes(b) for b in queue.buffers())[:arg]
            out += data
            queue.consumed(len(data))
    out += drain(queue)

    # Greedily match the output against the pushed messages in order.
    position = 0
    for data in pushed:
        if out.startswith(data, position):
            position += len(data)
    assert position == len(out)
    assert queue.queued_frames == 0
    assert queue.queued_bytes == 0


def test_a_phase_shifts_the_grid():
    batcher = Batcher(0.1, phase=0.03)

    batcher.add(0, 0, frame(1), now=1.04)
    assert batcher.deadline == pytest.approx(1.13)
    assert batcher.poll(now=1.131)

    batcher.add(0, 0, frame(2), now=1.13)
    assert batcher.deadline == pytest.approx(1.23)


def test_the_window_counts_from_capture():
    batcher = Batcher(0.1)

    # Captured at 1.04 but arriving at 1.12: its window (1.0 to 1.1) is over.
    batcher.add(0, 0, frame(1), now=1.12, captured=1.04)

    assert batcher.deadline == pytest.approx(1.1)
    assert len(batcher.poll(now=1.12)) == 1
