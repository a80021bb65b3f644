"""WebSocket load: M clients per meeting in several processes, and what they measured.

Every client is real client code: the ``websockets`` library's asyncio client (on
uvloop when it is installed), in worker processes of their own, away from the server.
A worker connects its clients, ``gc.freeze()``s them (so full collections do not walk
every connection and stall every client), reports, then records every message until
told to stop. Per binary message it keeps only the receive time, the PCM size and,
for the mixed stream, the first 8 bytes of PCM (the sim's capture stamp). Figures are
worked out after the run, from the messages received in the measured window.

Two latency estimates, both for the *oldest* byte of each mixed message:

* ``latency`` (stamped servers only): receive time minus the capture time stamped in
  the message's first frame (``stamp_capture`` in the sim scenario). CLOCK_MONOTONIC
  is shared by all processes of the machine, so this is capture-to-receipt.
* ``lag_oldest`` (any server, the anchor's ``loadclient.py`` method): with
  ``x = receive_time - bytes_so_far / 64000`` and ``t0`` the smallest ``x`` in the
  stream's first 2 s, ``lag = x - t0`` (the newest byte) and
  ``lag_oldest = lag + message_bytes / 64000``. It is relative to the best case the
  client saw, so it compares like with like against a server without stamps.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib.util
import inspect
import json
import math
import multiprocessing
import os
import resource
import time
import urllib.parse
from array import array
from bisect import bisect_left
from dataclasses import dataclass, field

BYTES_PER_SECOND = 64000  # 32 kHz, mono, S16LE
FRAME_BYTES = 640  # one 10 ms frame
FRAME_NS = 10_000_000
HEADER_BYTES = 16
MIXED_HEADER = bytes(16)  # audio_type 0, user_id 0


@dataclass
class LoadConfig:
    """What the clients do; picklable, handed to every worker process."""

    ws_base: str  # ws://127.0.0.1:PORT
    meeting_ids: list[str]
    clients_per_meeting: int
    procs: int = 1
    stream_type: str = "mixed"  # mixed, one_way, share, a comma list, or "all"
    queue_size: int | None = None
    stamped: bool = False
    offer_deflate: bool = True  # what browsers and websockets do by default
    connect_concurrency: int = 50
    connect_timeout: float = 120.0
    t0_window: float = 2.0
    loop: str = field(default_factory=lambda: "uvloop" if has_uvloop() else "asyncio")


def has_uvloop() -> bool:
    return importlib.util.find_spec("uvloop") is not None


def client_url(conf: LoadConfig, meeting_id: str) -> str:
    query = {}
    if conf.stream_type != "all":
        query["type"] = conf.stream_type
    if conf.queue_size is not None:
        query["queue_size"] = str(conf.queue_size)
    url = f"{conf.ws_base.rstrip('/')}/ws/audio/{meeting_id}"
    return url + ("?" + urllib.parse.urlencode(query, safe=",") if query else "")


# --------------------------------------------------------------------- worker side


class Client:
    __slots__ = (
        "closed_at",
        "deflate",
        "drop_events",
        "dropped_frames",
        "dropped_notices",
        "error",
        "format_ok",
        "heartbeats",
        "index",
        "meeting",
        "other_bytes",
        "other_messages",
        "sizes",
        "stamps",
        "stopping",
        "texts",
        "times",
        "ws",
    )

    def __init__(self, meeting: str, index: int) -> None:
        self.meeting = meeting
        self.index = index
        self.ws = None
        self.times = array("q")  # receive time of each mixed message, monotonic ns
        self.sizes = array("l")  # its PCM bytes
        self.stamps = array("Q")  # its first 8 PCM bytes as uint64 LE
        self.other_bytes = array("q")  # (receive time, PCM bytes) of other streams
        self.other_messages = 0
        self.texts = 0
        self.heartbeats = 0
        self.dropped_notices = 0
        self.dropped_frames = 0
        self.format_ok: bool | None = None
        self.error: str | None = None
        self.closed_at: int | None = None
        self.stopping = False
        self.deflate = False
        self.drop_events: list[tuple[int, int]] = []  # (receive time ns, frames)


def _connect_kwargs(conf: LoadConfig) -> dict:
    from websockets.asyncio.client import connect

    kw = {
        "compression": "deflate" if conf.offer_deflate else None,
        "ping_interval": None,
        "max_size": 2**24,
        "open_timeout": conf.connect_timeout,
        "close_timeout": 2,
    }
    if "proxy" in inspect.signature(connect.__init__).parameters:
        kw["proxy"] = None  # loopback only: never through a proxy from the environment
    return kw


async def _receive(client: Client) -> None:
    import websockets

    now_ns = time.monotonic_ns
    times, sizes, stamps = client.times, client.sizes, client.stamps
    other = client.other_bytes
    from_bytes = int.from_bytes
    try:
        async for msg in client.ws:
            t = now_ns()
            if type(msg) is bytes:
                if msg[:HEADER_BYTES] == MIXED_HEADER:
                    times.append(t)
                    sizes.append(len(msg) - HEADER_BYTES)
                    stamps.append(from_bytes(msg[16:24], "little"))
                else:
                    other.append(t)
                    other.append(len(msg) - HEADER_BYTES)
                continue
            client.texts += 1
            try:
                body = json.loads(msg)
            except ValueError:
                continue
            kind = body.get("type")
            if kind == "heartbeat":
                client.heartbeats += 1
            elif kind == "dropped":
                frames = int(body.get("frames", 0))
                client.dropped_notices += 1
                client.dropped_frames += frames
                client.drop_events.append((now_ns(), frames))
            elif kind == "audio_format" and client.format_ok is None:
                client.format_ok = (
                    body.get("sample_rate") == 32000
                    and body.get("channels") == 1
                    and body.get("sample_format") == "s16le"
                )
            elif kind == "error":
                client.error = f"server error {body.get('code')}: {body.get('error')}"
    except websockets.ConnectionClosed as exc:
        if client.error is None and not client.stopping:
            client.error = f"closed: {exc}"
    except Exception as exc:  # one client's failure must not end the run
        client.error = f"{type(exc).__name__}: {exc}"
    client.closed_at = now_ns()


async def _open(client: Client, url: str, kw: dict, gate, deadline: float):
    from websockets.asyncio.client import connect

    async with gate:
        timeout = deadline - time.monotonic()
        if timeout <= 0:
            client.error = "connect: not attempted, connect timeout passed"
            return None
        try:
            client.ws = await asyncio.wait_for(connect(url, **kw), timeout)
        except Exception as exc:
            client.error = f"connect: {type(exc).__name__}: {exc}"
            return None
    extensions = client.ws.response.headers.get("Sec-WebSocket-Extensions", "")
    client.deflate = "permessage-deflate" in extensions
    return asyncio.ensure_future(_receive(client))


async def _close_all(clients: list[Client]) -> None:
    async def close(c: Client) -> None:
        try:
            await asyncio.wait_for(c.ws.close(), 5)
        except Exception:
            if c.ws.transport is not None:
                c.ws.transport.abort()

    live = [c for c in clients if c.ws is not None]
    for c in live:
        c.stopping = True
    await asyncio.gather(*(close(c) for c in live), return_exceptions=True)


async def _worker_main(conf: LoadConfig, specs: list[tuple[str, int]], pipe) -> dict:
    loop = asyncio.get_running_loop()
    kw = _connect_kwargs(conf)
    clients = [Client(m, i) for m, i in specs]
    gate = asyncio.Semaphore(conf.connect_concurrency)
    began = time.monotonic()
    deadline = began + conf.connect_timeout
    tasks = await asyncio.gather(
        *(_open(c, client_url(conf, c.meeting), kw, gate, deadline) for c in clients)
    )
    tasks = [t for t in tasks if t is not None]
    # Long-lived connections: take them out of the collector's sight.
    gc.collect()
    gc.freeze()
    pipe.send(
        {
            "connected": len(tasks),
            "failed": len(clients) - len(tasks),
            "deflate": sum(c.deflate for c in clients),
            "connect_s": time.monotonic() - began,
            "errors": [c.error for c in clients if c.error][:5],
        }
    )
    got = loop.create_future()

    def on_plan() -> None:
        if not got.done():
            got.set_result(pipe.recv())

    loop.add_reader(pipe.fileno(), on_plan)
    plan = await got
    loop.remove_reader(pipe.fileno())
    os.set_blocking(pipe.fileno(), True)  # uvloop leaves it non-blocking
    result: dict = {"rows": [], "cpu_s": 0.0}
    if not plan.get("abort"):
        t_start, t_end = plan["start_ns"], plan["end_ns"]
        await asyncio.sleep(max(0.0, (t_start - time.monotonic_ns()) / 1e9))
        cpu0 = time.process_time()
        await asyncio.sleep(max(0.0, (t_end - time.monotonic_ns()) / 1e9))
        cpu1 = time.process_time()
        # Messages already on the wire land, and fall outside the window.
        await asyncio.sleep(0.3)
        result = summarize_clients(conf, clients, t_start, t_end)
        result["cpu_s"] = cpu1 - cpu0
    await _close_all(clients)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    result["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1000
    return result


def _worker_entry(conf: LoadConfig, specs: list[tuple[str, int]], pipe) -> None:
    try:
        if conf.loop == "uvloop":
            import uvloop

            result = uvloop.run(_worker_main(conf, specs, pipe))
        else:
            result = asyncio.run(_worker_main(conf, specs, pipe))
        pipe.send(result)
    except BaseException as exc:  # report, so the parent does not wait in vain
        with contextlib.suppress(Exception):
            pipe.send({"fatal": f"{type(exc).__name__}: {exc}"})
        raise


# --------------------------------------------------------------------- figures


def summarize_clients(
    conf: LoadConfig, clients: list[Client], t_start: int, t_end: int
) -> dict:
    """Per-client rows and pooled latency samples (ms) for ``[t_start, t_end)``."""
    latency, lag, lag_oldest = array("d"), array("d"), array("d")
    seconds = max(1, math.ceil((t_end - t_start) / 1e9))
    worst_by_second = [0.0] * seconds
    rows = []
    span_ns = int(conf.t0_window * 1e9)
    for c in clients:
        times, sizes, stamps = c.times, c.sizes, c.stamps
        i0, i1 = bisect_left(times, t_start), bisect_left(times, t_end)
        mixed_bytes = sum(sizes[i0:i1])
        other_bytes = 0
        other_messages = 0
        ob = c.other_bytes
        for k in range(0, len(ob), 2):
            if t_start <= ob[k] < t_end:
                other_bytes += ob[k + 1]
                other_messages += 1
        row = {
            "meeting": c.meeting,
            "client": c.index,
            "messages": (i1 - i0) + other_messages,
            "pcm_bytes": mixed_bytes + other_bytes,
            "dropped_frames": c.dropped_frames,
            "dropped_frames_in_window": sum(
                f for t, f in c.drop_events if t_start <= t < t_end
            ),
            "dropped_notices": c.dropped_notices,
            "heartbeats": c.heartbeats,
            "format_ok": c.format_ok,
            "deflate": c.deflate,
            "error": c.error,
            "stamp_gaps": 0,
        }
        if c.closed_at is not None and c.closed_at < t_end and row["error"] is None:
            row["error"] = "closed before the end"
        if times:
            # The anchor's method: lag relative to the best case of the first 2 s.
            total = 0
            xs = array("d")
            for t, size in zip(times, sizes, strict=True):
                total += size
                xs.append(t / 1e9 - total / BYTES_PER_SECOND)
            limit = times[0] + span_ns
            t0 = min(x for x, t in zip(xs, times, strict=True) if t <= limit)
            for k in range(i0, i1):
                newest = xs[k] - t0
                lag.append(1000 * newest)
                oldest = 1000 * (newest + sizes[k] / BYTES_PER_SECOND)
                lag_oldest.append(oldest)
                if not conf.stamped:
                    b = (times[k] - t_start) // 1_000_000_000
                    if oldest > worst_by_second[b]:
                        worst_by_second[b] = oldest
            if conf.stamped:
                gaps = 0
                for k in range(i0, i1):
                    ms = (times[k] - stamps[k]) / 1e6
                    latency.append(ms)
                    b = (times[k] - t_start) // 1_000_000_000
                    if ms > worst_by_second[b]:
                        worst_by_second[b] = ms
                    if k > 0:
                        frames = sizes[k - 1] // FRAME_BYTES
                        if stamps[k] != stamps[k - 1] + frames * FRAME_NS:
                            gaps += 1
                row["stamp_gaps"] = gaps
        rows.append(row)
    return {
        "rows": rows,
        "latency_ms": latency,
        "lag_ms": lag,
        "lag_oldest_ms": lag_oldest,
        "worst_by_second_ms": worst_by_second,
    }


class ClientFleet:
    """The worker processes of one load; connect, then measure one window."""

    def __init__(self, conf: LoadConfig) -> None:
        self.conf = conf
        specs = [
            (m, i) for i in range(conf.clients_per_meeting) for m in conf.meeting_ids
        ]
        self.total = len(specs)
        ctx = multiprocessing.get_context("fork")
        self.workers = []
        for k in range(conf.procs):
            mine, theirs = ctx.Pipe()
            proc = ctx.Process(
                target=_worker_entry,
                args=(conf, specs[k :: conf.procs], theirs),
                daemon=True,
                name=f"bench-clients-{k}",
            )
            proc.start()
            theirs.close()
            self.workers.append((proc, mine))

    @property
    def pids(self) -> list[int]:
        return [proc.pid for proc, _ in self.workers]

    def _collect(self, what: str, timeout: float) -> list[dict]:
        out = []
        deadline = time.monotonic() + timeout
        for _proc, pipe in self.workers:
            if not pipe.poll(max(0.0, deadline - time.monotonic())):
                raise RuntimeError(
                    f"a client process sent no {what} within {timeout:.0f} s"
                )
            msg = pipe.recv()
            if "fatal" in msg:
                raise RuntimeError(f"a client process failed: {msg['fatal']}")
            out.append(msg)
        return out

    def wait_connected(self) -> dict:
        began = time.monotonic()
        hellos = self._collect("connection report", self.conf.connect_timeout + 60)
        return {
            "connected": sum(h["connected"] for h in hellos),
            "failed": sum(h["failed"] for h in hellos),
            "deflate_negotiated": sum(h["deflate"] for h in hellos),
            "connect_s": round(time.monotonic() - began, 2),
            "errors": [e for h in hellos for e in h["errors"]][:5],
        }

    def measure(self, start_ns: int, end_ns: int) -> None:
        for _, pipe in self.workers:
            pipe.send({"start_ns": start_ns, "end_ns": end_ns})

    def abort(self) -> None:
        for _, pipe in self.workers:
            with contextlib.suppress(OSError):
                pipe.send({"abort": True})

    def results(self) -> list[dict]:
        return self._collect("results", 120 + self.total * 0.05)

    def close(self) -> None:
        for proc, _ in self.workers:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
                proc.join(5)
