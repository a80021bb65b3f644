"""The worker protocol codec without sockets: round trips, chunking, bad input."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.protocol.codec import (
    MAX_FRAME,
    PROTOCOL_VERSION,
    Audio,
    Decoder,
    Hello,
    Join,
    Leave,
    Log,
    Participant,
    ProtocolError,
    ShareFrame,
    ShareState,
    Stats,
    Status,
    encode,
)

HELLO = encode(Hello(pid=1234))

u32 = st.integers(0, 2**32 - 1)
u64 = st.integers(0, 2**64 - 1)
text = st.text(max_size=40)

events = st.one_of(
    st.builds(Join, st.dictionaries(st.text(max_size=8), st.integers(), max_size=4)),
    st.just(Leave()),
    st.builds(Status, text, st.none() | text, text),
    st.builds(Participant, u32, text, st.booleans()),
    st.builds(Audio, st.integers(0, 2), u32, u64, st.binary(max_size=2000)),
    st.builds(ShareState, u32, st.booleans()),
    st.builds(Log, st.integers(0, 50), text, text),
    st.builds(Stats, st.dictionaries(st.text(max_size=8), st.integers(0, 2**40))),
    st.integers(1, 16).flatmap(
        lambda w: st.integers(1, 16).flatmap(
            lambda h: st.builds(
                ShareFrame,
                u32,
                u64,
                st.just(w * 2),
                st.just(h * 2),
                st.binary(min_size=w * h * 6, max_size=w * h * 6),
            )
        )
    ),
)


def normalise(event):
    """Events compare by value; payload views become bytes for the comparison."""
    if isinstance(event, Audio):
        return Audio(
            event.audio_type, event.user_id, event.capture_ns, bytes(event.pcm)
        )
    if isinstance(event, ShareFrame):
        return ShareFrame(
            event.user_id,
            event.capture_ns,
            event.width,
            event.height,
            bytes(event.i420),
        )
    return event


def decode_all(chunks):
    decoder = Decoder()
    out = []
    for chunk in chunks:
        decoder.feed(chunk)
        out.extend(normalise(e) for e in decoder)
    return decoder, out


@settings(max_examples=200)
@given(st.lists(events, max_size=12), st.data())
def test_any_chunking_decodes_the_same_events(evs, data):
    stream = HELLO + b"".join(encode(e) for e in evs)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    chunks = [
        stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)
    ]

    decoder, out = decode_all(chunks)

    assert out == [Hello(pid=1234), *(normalise(e) for e in evs)]
    assert not decoder.has_partial_frame


def test_one_byte_at_a_time():
    frame = Audio(1, 16778240, 123456789, bytes(range(256)) * 3)
    stream = HELLO + encode(frame) + encode(Leave())

    _, out = decode_all([stream[i : i + 1] for i in range(len(stream))])

    assert out == [Hello(pid=1234), frame, Leave()]


def test_payload_inside_one_chunk_is_a_view_not_a_copy():
    chunk = HELLO + encode(Audio(0, 0, 1, b"\x01\x02" * 320))
    decoder = Decoder()

    decoder.feed(chunk)
    decoder.next_event()
    audio = decoder.next_event()

    assert isinstance(audio.pcm, memoryview)
    assert audio.pcm.obj is chunk


def test_partial_frame_is_reported_until_complete():
    frame = encode(Status("MEETING_STATUS_INMEETING"))
    decoder = Decoder()
    decoder.feed(HELLO + frame[:3])
    assert decoder.has_partial_frame
    assert decoder.next_event() == Hello(pid=1234)
    assert decoder.next_event() is None

    decoder.feed(frame[3:])

    assert decoder.next_event() == Status("MEETING_STATUS_INMEETING")
    assert not decoder.has_partial_frame


@pytest.mark.parametrize(
    ("stream", "message"),
    [
        (encode(Leave()), "expected HELLO first"),
        (HELLO + HELLO, "HELLO sent twice"),
        (struct.pack("<IB4sHI", 11, 1, b"XXXX", 1, 1), "bad magic"),
        (struct.pack("<IB4sHI", 11, 1, b"HMBW", PROTOCOL_VERSION + 1, 1), "version"),
        (HELLO + struct.pack("<IB", 0, 3), "out of range"),
        (HELLO + struct.pack("<IB", MAX_FRAME + 1, 3), "out of range"),
        (HELLO + struct.pack("<IB", 1, 99), "unknown frame kind"),
        (HELLO + struct.pack("<IB", 3, 6) + b"\x00\x00", "malformed payload"),
        (HELLO + struct.pack("<IBBIQ", 14, 6, 7, 0, 0), "unknown audio type"),
        (HELLO + struct.pack("<IBIQHH", 17, 8, 0, 0, 4, 4) + b"x", "I420 4x4"),
        (HELLO + struct.pack("<IB", 3, 4) + b"{x", "not JSON"),
        (HELLO + struct.pack("<IB", 3, 2) + b"[]", "not an object"),
        (HELLO + struct.pack("<IB", 3, 4) + b"{}", "malformed payload"),
        (HELLO + struct.pack("<IB", 2, 3) + b"x", "no payload"),
        (HELLO + struct.pack("<IBBI", 7, 5, 1, 0) + b"\xff\xfe", "malformed"),
    ],
)
def test_malformed_input_raises_protocol_error(stream, message):
    decoder = Decoder()

    with pytest.raises(ProtocolError, match=message):
        decoder.feed(stream)

    with pytest.raises(ProtocolError, match="after a protocol error"):
        decoder.feed(b"")


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_garbage_never_raises_anything_but_protocol_error(garbage):
    decoder = Decoder()
    try:
        decoder.feed(HELLO + garbage)
        list(decoder)
    except ProtocolError:
        pass


def test_encoder_refuses_a_wrongly_sized_share_frame():
    with pytest.raises(ValueError, match="I420"):
        encode(ShareFrame(1, 0, 4, 4, b"short"))


def test_a_large_frame_can_be_read_straight_into_its_buffer():
    pixels = bytes(range(256)) * (64 * 48 * 3 // 2 // 256)
    frame = encode(ShareFrame(7, 99, 64, 48, pixels))
    decoder = Decoder()
    decoder.feed(HELLO + frame[:100])
    assert decoder.next_event() == Hello(pid=1234)
    rest = frame[100:]

    while rest:
        buffer = decoder.receive_buffer()
        count = min(len(buffer), 1000)
        buffer[:count] = rest[:count]
        decoder.received(count)
        rest = rest[count:]

    event = decoder.next_event()
    assert bytes(event.i420) == pixels
    assert decoder.receive_buffer() is None
    assert not decoder.has_partial_frame


def test_received_refuses_more_than_the_buffer():
    decoder = Decoder()
    decoder.feed(HELLO + encode(Audio(0, 0, 1, b"\\x00" * 640))[:10])

    with pytest.raises(ValueError, match="smaller buffer"):
        decoder.received(10_000)
