"""The native fan-out and the bus's direct sends, on real socket pairs."""

from __future__ import annotations

import errno
import os
import socket
import time

import trio
import trio.testing

from appliance.bus.audio_bus import MeetingAudio, StreamFilter
from appliance.ws import fanout
from appliance.ws.batching import ClientQueue
from tests.test_ws_batching import parse_frames


def pair(buffer: int | None = None) -> tuple[socket.socket, socket.socket]:
    ours, theirs = socket.socketpair()
    if buffer is not None:
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, buffer)
        theirs.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, buffer)
    ours.setblocking(False)
    return ours, theirs


def read_all(sock: socket.socket) -> bytes:
    sock.setblocking(False)
    data = bytearray()
    while True:
        try:
            chunk = sock.recv(1 << 20)
        except BlockingIOError:
            return bytes(data)
        if not chunk:
            return bytes(data)
        data += chunk


def test_send_to_all_reports_each_socket():
    whole, whole_peer = pair()
    tight, tight_peer = pair(buffer=4096)
    gone, gone_peer = pair()
    gone_peer.close()
    data = bytes(range(256)) * 64  # 16 KB: more than the tight socket takes

    first = fanout.send_to_all([whole.fileno(), tight.fileno(), gone.fileno()], data)
    again = fanout.send_to_all([tight.fileno()], data)

    assert first[0] == len(data)
    assert 0 < first[1] < len(data)
    assert first[2] == -errno.EPIPE
    assert again == [fanout.FULL]
    assert read_all(whole_peer) == data
    assert read_all(tight_peer) == data[: first[1]]
    for sock in (whole, whole_peer, tight, tight_peer, gone):
        sock.close()


class SocketWriter:
    """The Writer protocol on a real socket, as the front door implements it."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.queue: ClientQueue | None = None

    def attach(self, queue: ClientQueue) -> None:
        self.queue = queue

    def direct_fd(self) -> int | None:
        return self.sock.fileno()

    def write_nowait(self) -> None:
        while self.queue:
            try:
                written = os.writev(self.sock.fileno(), self.queue.buffers())
            except BlockingIOError:
                return
            except OSError as exc:
                raise trio.BrokenResourceError(str(exc)) from exc
            self.queue.consumed(written)

    async def flush(self) -> None:
        while self.queue:
            self.write_nowait()
            if self.queue:
                await trio.lowlevel.wait_writable(self.sock)


def audio_of(data: bytes) -> bytes:
    return b"".join(p[16:] for _, p in parse_frames(data) if isinstance(p, bytes))


async def test_direct_sends_keep_order_and_fall_back_to_the_queue():
    bus = MeetingAudio("m", window=0.05, heartbeat_interval=100)
    offset = trio.current_time() - time.monotonic()
    fast, fast_peer = pair()
    slow, slow_peer = pair(buffer=4096)  # its reader never reads during the run
    gone, gone_peer = pair()
    mixed = StreamFilter.parse("mixed", None)
    subscribers = [
        bus.subscribe(SocketWriter(sock), mixed, 10_000) for sock in (fast, slow, gone)
    ]
    gone_peer.close()
    frames = [bytes([n]) * 640 for n in range(200)]

    received = bytearray()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(bus.run)
        for n, frame in enumerate(frames):
            capture = round((trio.current_time() - offset) * 1e9)
            bus.publish(0, 0, frame, capture)
            await trio.sleep(0.001)
            if n == 150:
                # Room again on the slow socket while its backlog waits: a new
                # message must still go behind the backlog, not past it.
                assert subscribers[1].queue
                received += read_all(slow_peer)
        await trio.sleep(0.1)
        assert subscribers[1].queue  # the slow client's backlog waits in its queue
        assert not subscribers[2].alive  # a send to a closed peer ends that client
        received += read_all(slow_peer)
        # Once its reader catches up, the slow client's drainer sends the rest.
        nursery.start_soon(subscribers[1].serve)
        with trio.fail_after(5):
            while subscribers[1].queue:
                received += read_all(slow_peer)
                await trio.sleep(0.01)
        received += read_all(slow_peer)
        nursery.cancel_scope.cancel()

    everything = b"".join(frames)
    assert audio_of(read_all(fast_peer)) == everything
    assert audio_of(bytes(received)) == everything
    for sock in (fast, fast_peer, slow, slow_peer, gone):
        sock.close()
