"""The audio bus on Trio's mock clock, with in-memory writers in place of sockets."""

from __future__ import annotations

import itertools
import json
import math
import struct
import time

import pytest
import trio
import trio.testing

from appliance.bus.audio_bus import (
    READ_AFTER_BOUNDARY,
    WINDOW_END_AFTER_FRAME,
    MeetingAudio,
    StreamFilter,
)
from appliance.errors import InvalidRequest
from appliance.ws.batching import ClientQueue
from tests.test_ws_batching import parse_frames


class MemoryWriter:
    """Takes up to ``capacity`` bytes without blocking, like a socket buffer."""

    def __init__(self, capacity: float = float("inf")) -> None:
        self.capacity = capacity
        self.data = bytearray()
        self.write_times: list[tuple[float, int]] = []
        self.queue: ClientQueue | None = None
        self.room = trio.Event()

    def attach(self, queue: ClientQueue) -> None:
        self.queue = queue

    def direct_fd(self) -> int | None:
        return None  # no socket: everything goes through the queue

    def write_nowait(self) -> None:
        while self.queue and self.capacity > 0:
            chunk = b"".join(bytes(b) for b in self.queue.buffers())
            chunk = chunk[: int(min(len(chunk), self.capacity))]
            self.capacity -= len(chunk)
            self.data += chunk
            self.write_times.append((trio.current_time(), len(self.data)))
            self.queue.consumed(len(chunk))

    async def flush(self) -> None:
        while self.queue:
            self.write_nowait()
            if self.queue:
                await self.room.wait()
                self.room = trio.Event()

    def open_up(self) -> None:
        self.capacity = float("inf")
        self.room.set()

    def messages(self) -> list:
        out = []
        for _, payload in parse_frames(bytes(self.data)):
            if isinstance(payload, str):
                out.append(json.loads(payload))
            else:
                out.append((*struct.unpack_from("<QQ", payload), payload[16:]))
        return out


def pcm(n: int) -> bytes:
    return struct.pack("<I", n) * 160


async def publish_frames(bus: MeetingAudio, count: int, users=(7,)) -> None:
    """Frames at real-time pace on the (mock) clock: mixed plus one_way per user."""
    for n in range(count):
        bus.publish(0, 0, pcm(n))
        for user in users:
            bus.publish(1, user, pcm(n))
        await trio.sleep(0.01)


@pytest.fixture
def autojump():
    return trio.testing.MockClock(autojump_threshold=0)


def test_filters_parse_and_match():
    assert StreamFilter.parse(None, None).matches(2, 5)
    one_way_7 = StreamFilter.parse("one_way", "7,8")
    assert one_way_7.matches(1, 7)
    assert not one_way_7.matches(1, 9)
    assert not one_way_7.matches(0, 0)
    users = StreamFilter.parse(None, "7")
    assert users.matches(0, 0)  # mixed has no user and is kept
    assert users.matches(2, 7)
    assert not users.matches(2, 8)
    for bad in [("video", None), (None, "x"), ("mixed,", None), (None, "-1")]:
        with pytest.raises(InvalidRequest):
            StreamFilter.parse(*bad)


async def test_windows_close_on_time_and_carry_every_frame(autojump):
    bus = MeetingAudio("m", window=0.1, heartbeat_interval=100)
    writer = MemoryWriter()
    bus.subscribe(writer, StreamFilter.parse("mixed", None), 1000)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(bus.run)
        start = trio.current_time()
        await publish_frames(bus, 100)
        await trio.sleep(0.2)
        nursery.cancel_scope.cancel()

    messages = writer.messages()
    assert messages[0]["type"] == "audio_format"
    audio = [m for m in messages[1:]]
    assert {(t, u) for t, u, _ in audio} == {(0, 0)}
    assert b"".join(p for _, _, p in audio) == b"".join(pcm(n) for n in range(100))
    assert len(audio) == 10
    # Windows close on the 100 ms grid of the clock.
    delivery = [t - start for t, _ in writer.write_times[1:]]
    assert delivery == pytest.approx([0.1 * (i + 1) for i in range(10)])


@pytest.mark.parametrize("frame_offset", [0.0, 0.0037])
async def test_a_paced_bus_is_read_once_per_window_just_after_its_last_frame(
    autojump, frame_offset
):
    # Frames are captured every 10 ms from frame_offset. The meeting's place among
    # other meetings (its phase, 3 whole frames here) stays; the first frame moves its
    # windows' ends to just after a frame.
    window, phase = 0.1, 0.0395
    bus = MeetingAudio("m", window=window, heartbeat_interval=100, phase=phase)
    # The bus maps capture times from CLOCK_MONOTONIC onto Trio's clock.
    offset = trio.current_time() - time.monotonic()
    writer = MemoryWriter()
    bus.subscribe(writer, StreamFilter.parse("mixed", None), 1000)
    bus.set_paced(True)
    assert bus.paced
    sent: list[tuple[float, int]] = []  # what the worker wrote: (capture, n)
    reads: list[float] = []

    async def reader() -> None:
        # What the meeting's reader does: sleep, take everything, close what is due.
        taken = 0
        while True:
            await trio.sleep_until(bus.next_read(trio.current_time()))
            reads.append(trio.current_time())
            for captured, n in sent[taken:]:
                bus.publish(0, 0, pcm(n), round((captured - offset) * 1e9))
            taken = len(sent)
            bus.close_due(trio.current_time())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(bus.run)
        nursery.start_soon(reader)
        await trio.sleep(frame_offset)
        for n in range(100):
            sent.append((trio.current_time(), n))
            await trio.sleep(0.01)
        await trio.sleep(0.3)
        nursery.cancel_scope.cancel()

    # Capture times pass through CLOCK_MONOTONIC, which moves on in real time.
    aligned = 0.03 + frame_offset + WINDOW_END_AFTER_FRAME
    assert bus.phase == pytest.approx(aligned, abs=1e-4)
    # After the read that saw the first frame, one read per window, just after each
    # boundary of the aligned grid.
    for read in reads[1:]:
        cell = (read - bus.phase) / window
        assert cell - math.floor(cell) == pytest.approx(0.01, abs=1e-6)
    assert [b - a for a, b in itertools.pairwise(reads)][1:] == pytest.approx(
        [window] * (len(reads) - 2)
    )
    # Every frame once, in order. A message leaves right after its newest frame, so
    # its oldest byte waits a window less one frame (plus the 3 ms of slack).
    audio = writer.messages()[1:]
    assert b"".join(p for _, _, p in audio) == b"".join(pcm(n) for n in range(100))
    delivered = [t for t, _ in writer.write_times[1:]]
    assert set(delivered) <= set(reads)
    slack = WINDOW_END_AFTER_FRAME + READ_AFTER_BOUNDARY
    first = 0
    for i, ((_, _, payload), t) in enumerate(zip(audio, delivered, strict=True)):
        frames = len(payload) // 640
        oldest, newest = sent[first][0], sent[first + frames - 1][0]
        assert t - oldest <= window - 0.01 + slack + 1e-4
        # The first read, before the grid moved, may take a frame of the next window.
        if 1 < i < len(audio) - 1:
            assert frames == 10
            assert t - newest == pytest.approx(slack, abs=1e-4)
        first += frames
    assert len(audio) == len(delivered) == 11


async def test_a_paced_bus_leaves_closing_windows_to_its_reader(autojump):
    bus = MeetingAudio("m", window=0.1, heartbeat_interval=100)
    offset = trio.current_time() - time.monotonic()
    writer = MemoryWriter()
    bus.subscribe(writer, StreamFilter.parse("mixed", None), 1000)
    bus.set_paced(True)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(bus.run)
        for n in range(5):
            bus.publish(0, 0, pcm(n), round((trio.current_time() - offset) * 1e9))
            await trio.sleep(0.01)
        await trio.sleep(0.5)
        assert len(writer.messages()) == 1  # audio_format only
        bus.set_paced(False)
        await trio.sleep(0.01)
        nursery.cancel_scope.cancel()

    audio = writer.messages()[1:]
    assert [p for _, _, p in audio] == [b"".join(pcm(n) for n in range(5))]


async def test_a_bus_with_window_0_is_never_paced():
    bus = MeetingAudio("m", window=0, heartbeat_interval=100)
    bus.set_paced(True)
    assert not bus.paced


async def test_groups_share_built_messages(autojump):
    bus = MeetingAudio("m", window=0.05, heartbeat_interval=100)
    same = [MemoryWriter() for _ in range(3)]
    for writer in same:
        bus.subscribe(writer, StreamFilter.parse("one_way", "7"), 1000)
    other = MemoryWriter()
    bus.subscribe(other, StreamFilter.parse("one_way", "8"), 1000)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(bus.run)
        await publish_frames(bus, 20, users=(7, 8))
        await trio.sleep(0.1)
        nursery.cancel_scope.cancel()

    assert same[0].data == same[1].data == same[2].data
    assert {(t, u) for t, u, _ in same[0].messages()[1:]} == {(1, 7)}
    assert {(t, u) for t, u, _ in other.messages()[1:]} == {(1, 8)}


async def test_heartbeats_on_the_clock(autojump):
    bus = MeetingAudio("m", window=0.1, heartbeat_interval=1.0)
    writer = MemoryWriter()
    bus.subscribe(writer, StreamFilter(), 10)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(bus.run)
        await trio.sleep(3.5)
        nursery.cancel_scope.cancel()

    kinds = [m["type"] for m in writer.messages()]
    assert kinds == ["audio_format", "heartbeat", "heartbeat", "heartbeat"]


async def test_a_stalled_client_drops_its_own_frames_only(autojump):
    bus = MeetingAudio("m", window=0.0, heartbeat_interval=100)
    fast = MemoryWriter()
    slow = MemoryWriter(capacity=0)
    bus.subscribe(fast, StreamFilter.parse("mixed", None), 1000)
    slow_subscriber = bus.subscribe(slow, StreamFilter.parse("mixed", None), 5)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(bus.run)
        nursery.start_soon(slow_subscriber.serve)
        await publish_frames(bus, 50)
        assert bus.frames_dropped == 45
        slow.open_up()
        await trio.sleep(0.05)
        bus.close("MEETING_ENDED", "over", 1000)
        await trio.sleep(0.05)
        nursery.cancel_scope.cancel()

    fast_audio = [m for m in fast.messages() if isinstance(m, tuple)]
    assert [p for _, _, p in fast_audio] == [pcm(n) for n in range(50)]
    slow_messages = slow.messages()
    slow_audio = [p for m in slow_messages if isinstance(m, tuple) for p in [m[2]]]
    # The newest five frames survived; the notice says how many were lost.
    assert slow_audio == [pcm(n) for n in range(45, 50)]
    notices = [m for m in slow_messages if isinstance(m, dict)]
    assert sum(m["frames"] for m in notices if m["type"] == "dropped") == 45
    assert notices[-1] == {"type": "error", "error": "over", "code": "MEETING_ENDED"}


async def test_close_delivers_held_frames_before_the_error(autojump):
    bus = MeetingAudio("m", window=10.0, heartbeat_interval=100)
    writer = MemoryWriter()
    subscriber = bus.subscribe(writer, StreamFilter(), 100)
    bus.publish(0, 0, pcm(1))
    bus.publish(0, 0, pcm(2))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(bus.run)
        bus.close("WORKER_DIED", "gone", 1011)
        assert await subscriber.serve() == 1011

    messages = writer.messages()
    assert messages[1] == (0, 0, pcm(1) + pcm(2))
    assert messages[2]["code"] == "WORKER_DIED"
    assert bus.closed
