"""Client connections that Hypercorn serves and the audio path writes to directly.

Theory of operation
-------------------
REST and the WebSocket handshake go through Hypercorn and Quart-Trio like any ASGI app.
Audio does not: pushing every message of every client through the ASGI WebSocket path
costs about 30 times the system call. So the appliance accepts connections itself and
hands Hypercorn a :class:`DirectWriteStream` for each. Once a WebSocket is accepted, the
audio bus attaches a :class:`~appliance.ws.batching.ClientQueue` to the stream, and from
then on *every* byte to that client, the bus's and Hypercorn's (pongs, the close frame)
alike, goes through that one queue, written with non-blocking ``writev`` on the socket.
One queue means one order: a close frame can never overtake the audio before it.

Reads stay with Hypercorn, so pings, close handshakes and disconnects are handled as
usual. One more thing happens on the way in: the first request of a connection to
``/ws/audio/`` loses its ``Sec-WebSocket-Extensions`` header, so permessage-deflate is
never negotiated for audio (PCM barely compresses and deflate costs more CPU than the
rest of the path).
"""

from __future__ import annotations

import logging
import os

import trio
from hypercorn.utils import parse_socket_addr

from appliance.ws.batching import ClientQueue

log = logging.getLogger(__name__)

AUDIO_PATH = b"GET /ws/audio/"
MAX_REQUEST_HEAD = 64 * 1024
_EXTENSIONS_HEADER = b"sec-websocket-extensions:"


def strip_extensions_offer(head: bytes) -> bytes:
    """``head`` without ``Sec-WebSocket-Extensions`` lines if it asks for audio."""
    if not head.startswith(AUDIO_PATH):
        return head
    lines = head.split(b"\r\n")
    kept = [line for line in lines if not line.lower().startswith(_EXTENSIONS_HEADER)]
    return b"\r\n".join(kept)


class DirectWriteStream(trio.abc.HalfCloseableStream):
    """A client socket: Hypercorn's transport, and the audio bus's write target."""

    def __init__(self, inner: trio.SocketStream, registry: ConnectionRegistry) -> None:
        self._inner = inner
        self._registry = registry
        self.socket = inner.socket
        self.peer = parse_socket_addr(inner.socket.family, inner.socket.getpeername())
        self.queue: ClientQueue | None = None
        self._closed = False
        self._head_pending = True
        self._readahead = b""
        # Trio lets one task at a time wait for a socket to become writable.
        self._writable_lock = trio.Lock()

    # -- the audio path ---------------------------------------------------------

    def attach(self, queue: ClientQueue) -> None:
        """Route every later write through ``queue`` (after the handshake)."""
        self.queue = queue

    def direct_fd(self) -> int | None:
        """The socket's descriptor, for sends that bypass an empty queue, or ``None``
        once the stream is closed (the number may then belong to another socket)."""
        if self._closed:
            return None
        fd = self.socket.fileno()
        return fd if fd >= 0 else None

    def write_nowait(self) -> None:
        """Write as much of the queue as the socket takes now, without waiting.

        Raises :class:`trio.BrokenResourceError` if the peer is gone and
        :class:`trio.ClosedResourceError` if the stream was closed.
        """
        if self._closed:
            raise trio.ClosedResourceError("connection closed")
        queue = self.queue
        fd = self.socket.fileno()
        while queue:
            try:
                written = os.writev(fd, queue.buffers())
            except BlockingIOError:
                return
            except OSError as exc:
                raise trio.BrokenResourceError(f"peer gone: {exc}") from exc
            queue.consumed(written)

    async def wait_writable(self) -> None:
        async with self._writable_lock:
            if self._closed:
                raise trio.ClosedResourceError("connection closed")
            await trio.lowlevel.wait_writable(self.socket)

    async def flush(self) -> None:
        """Wait until everything queued so far has been written."""
        while self.queue:
            self.write_nowait()
            if self.queue:
                await self.wait_writable()

    # -- trio.abc.HalfCloseableStream, as Hypercorn uses it ---------------------

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if self.queue is None:
            await self._inner.send_all(data)
            return
        item = self.queue.push_control(bytes(data))
        while not item.written:
            self.write_nowait()
            if not item.written:
                await self.wait_writable()

    async def wait_send_all_might_not_block(self) -> None:
        await self._inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if self._head_pending:
            await self._read_request_head()
        if self._readahead:
            limit = max_bytes or len(self._readahead)
            data, self._readahead = self._readahead[:limit], self._readahead[limit:]
            return data
        return await self._inner.receive_some(max_bytes)

    async def _read_request_head(self) -> None:
        head = b""
        while b"\r\n\r\n" not in head and len(head) < MAX_REQUEST_HEAD:
            data = await self._inner.receive_some()
            if not data:
                break
            head += data
        self._head_pending = False
        end = head.find(b"\r\n\r\n")
        if end >= 0:
            head = strip_extensions_offer(head[:end]) + head[end:]
        self._readahead = head

    async def send_eof(self) -> None:
        if self.queue is not None:
            with trio.move_on_after(5):
                await self.flush()
        await self._inner.send_eof()

    async def aclose(self) -> None:
        self._closed = True
        self._registry.forget(self)
        await self._inner.aclose()


class ConnectionRegistry:
    """Open client connections by peer address, as ASGI's ``scope["client"]`` has it."""

    def __init__(self) -> None:
        self._by_peer: dict[tuple[str, int], DirectWriteStream] = {}

    def add(self, stream: DirectWriteStream) -> None:
        if stream.peer is not None:
            self._by_peer[stream.peer] = stream

    def forget(self, stream: DirectWriteStream) -> None:
        if stream.peer is not None and self._by_peer.get(stream.peer) is stream:
            del self._by_peer[stream.peer]

    def find(self, client: tuple[str, int] | list | None) -> DirectWriteStream | None:
        if client is None:
            return None
        return self._by_peer.get((client[0], client[1]))

    def __len__(self) -> int:
        return len(self._by_peer)


class FrontDoorListener(trio.abc.Listener[DirectWriteStream]):
    """Accepts TCP connections and wraps each in a :class:`DirectWriteStream`."""

    def __init__(
        self, inner: trio.SocketListener, registry: ConnectionRegistry
    ) -> None:
        self._inner = inner
        self.registry = registry

    async def accept(self) -> DirectWriteStream:
        stream = DirectWriteStream(await self._inner.accept(), self.registry)
        self.registry.add(stream)
        return stream

    async def aclose(self) -> None:
        await self._inner.aclose()
