"""The worker process: ``headless-meeting-bot worker --fd N --name NAME --driver D``.

Theory of operation
-------------------
The supervisor starts a worker ahead of need (a spare), hands it one end of a Unix
socket pair as file descriptor ``N``, and later sends it a ``JOIN`` for one meeting. A
spare imports its driver's code while it waits, so a join does not wait for that; a
spare dismissed before any ``JOIN`` (EOF) exits quietly. Its stdout and stderr are
already a log file of its own, so whatever a native library prints lands there, never
in the protocol.

The worker runs Trio in the main thread and the driver on a thread of its own (see
:mod:`appliance.drivers.base`). Trio reads ``JOIN`` and ``LEAVE`` from the supervisor.
What the driver reports goes out through an :class:`Outbox`, written straight from the
driver thread when the socket has room, and by Trio when it had not. The worker's own
log records travel to the supervisor as ``LOG`` frames.

It ends when the driver returns (the meeting is over for the bot). A ``LEAVE``, an EOF
from the supervisor (it died) and SIGTERM all ask the driver to leave; if the driver
does not return within ``LEAVE_TIMEOUT`` the worker exits anyway.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
from typing import Any

import trio

from appliance import logs
from appliance.drivers import load_driver, preload_driver
from appliance.drivers.base import Driver, JoinRequest
from appliance.errors import ApplianceError, ErrorCode
from appliance.protocol import codec
from appliance.status import MeetingStatus
from appliance.worker.events import WorkerEvents
from appliance.worker.outbox import Outbox

log = logging.getLogger(__name__)

HANDSHAKE_TIMEOUT = 10.0
LEAVE_TIMEOUT = 15.0
STATS_INTERVAL = 1.0


class ProtocolLogHandler(logging.Handler):
    """Sends log records to the supervisor as ``LOG`` frames."""

    def __init__(self, outbox: Outbox) -> None:
        super().__init__()
        self._outbox = outbox

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._outbox.put(
                codec.Log(record.levelno, record.name, self.format(record))
            )
        except Exception:
            self.handleError(record)


async def _read_until(
    stream: trio.SocketStream, decoder: codec.Decoder, kind: type
) -> Any:
    while True:
        event = decoder.next_event()
        if event is not None:
            if isinstance(event, kind):
                return event
            raise codec.ProtocolError(f"expected {kind.__name__}, got {event!r}")
        data = await stream.receive_some()
        if not data:
            raise EOFError(f"EOF while waiting for {kind.__name__}")
        decoder.feed(data)


async def _write_loop(
    stream: trio.SocketStream, outbox: Outbox, wakeups: trio.MemoryReceiveChannel
) -> None:
    async for _ in wakeups:
        await _flush(stream, outbox)


async def _flush(stream: trio.SocketStream, outbox: Outbox) -> None:
    """Write everything the outbox holds, waiting for the socket as needed."""
    while not outbox.flush_nowait():
        await trio.lowlevel.wait_writable(stream.socket)


class Leaving:
    """Asks the driver to leave, and bounds how long it may take to do so."""

    def __init__(self, driver: Driver) -> None:
        self._driver = driver
        self._requested = trio.Event()

    def request(self, why: str) -> None:
        if not self._requested.is_set():
            log.info("leaving reason=%s", why)
        self._requested.set()
        self._driver.request_leave()

    async def enforce_timeout(self, cancel_scope: trio.CancelScope) -> None:
        await self._requested.wait()
        await trio.sleep(LEAVE_TIMEOUT)
        log.error("driver did not leave within %.0f s; exiting anyway", LEAVE_TIMEOUT)
        cancel_scope.cancel()


async def _read_loop(
    stream: trio.SocketStream, decoder: codec.Decoder, leaving: Leaving
) -> None:
    while True:
        data = await stream.receive_some()
        if not data:
            leaving.request("supervisor closed the socket")
            return
        decoder.feed(data)
        for event in decoder:
            if isinstance(event, codec.Leave):
                leaving.request("asked by the supervisor")
            else:
                log.warning("ignoring unexpected frame %r", event)


async def _stats_loop(outbox: Outbox) -> None:
    reported = 0
    while True:
        await trio.sleep(STATS_INTERVAL)
        dropped = outbox.dropped_media_frames
        if dropped != reported:
            outbox.put(codec.Stats({"worker_dropped_frames": dropped}))
            reported = dropped


async def _on_sigterm(leaving: Leaving) -> None:
    with trio.open_signal_receiver(signal.SIGTERM) as signals:
        async for _ in signals:
            leaving.request("SIGTERM")


def _run_driver(
    driver: Driver, request: JoinRequest, events: WorkerEvents, done: threading.Event
) -> None:
    """The driver thread's body. Nothing may escape it."""
    try:
        driver.run(request, events)
    except BaseException as exc:
        log.exception("driver crashed meeting_id=%s", request.meeting_id)
        events.status(MeetingStatus.FAILED, ErrorCode.INTERNAL_ERROR, repr(exc))
    finally:
        if events.last_status is None or not events.last_status.is_final:
            events.status(
                MeetingStatus.FAILED,
                ErrorCode.INTERNAL_ERROR,
                "driver returned without a final status",
            )
        done.set()


async def serve_worker(stream: trio.SocketStream, driver_name: str) -> None:
    """Speak the worker protocol on ``stream`` until the meeting is over for the bot."""
    token = trio.lowlevel.current_trio_token()
    wake_send, wake_receive = trio.open_memory_channel[None](1)

    def wake() -> None:
        def nudge() -> None:
            with contextlib.suppress(trio.WouldBlock, trio.ClosedResourceError):
                wake_send.send_nowait(None)

        with contextlib.suppress(trio.RunFinishedError):
            token.run_sync_soon(nudge)

    outbox = Outbox(stream.socket.fileno(), wake)
    # HELLO first: nothing, not even a log record, may precede it.
    outbox.put(codec.Hello(pid=os.getpid()))
    handler = ProtocolLogHandler(outbox)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logging.getLogger().addHandler(handler)
    decoder = codec.Decoder()
    try:
        preload_driver(driver_name)
        await _flush(stream, outbox)
        with trio.fail_after(HANDSHAKE_TIMEOUT):
            await _read_until(stream, decoder, codec.Hello)
        try:
            join = await _read_until(stream, decoder, codec.Join)
        except EOFError:
            log.info("dismissed before joining a meeting")
            return
        params = dict(join.params)
        home = params.pop("home", None)
        if home:
            # The SDK keeps its state under $HOME: each worker has its own.
            os.environ["HOME"] = home
        request = JoinRequest(**params)
        meeting_id = request.meeting_id
        events = WorkerEvents(outbox, meeting_id)
        log.info("joining meeting_id=%s pid=%d", meeting_id, os.getpid())

        try:
            driver = load_driver(driver_name)
        except ApplianceError as exc:
            events.status(MeetingStatus.FAILED, exc.code, exc.message)
            await _flush(stream, outbox)
            return

        done = threading.Event()
        thread = threading.Thread(
            target=_run_driver,
            args=(driver, request, events, done),
            name=f"driver-{driver_name}",
            daemon=True,
        )
        leaving = Leaving(driver)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_read_loop, stream, decoder, leaving)
            nursery.start_soon(_stats_loop, outbox)
            nursery.start_soon(_on_sigterm, leaving)
            nursery.start_soon(leaving.enforce_timeout, nursery.cancel_scope)
            async with trio.open_nursery() as writer_nursery:
                writer_nursery.start_soon(_write_loop, stream, outbox, wake_receive)
                thread.start()
                await trio.to_thread.run_sync(done.wait, abandon_on_cancel=True)
                # Not a cancel: the writer finishes what it is writing, so the last
                # status the driver reported is never torn or lost.
                wake_send.close()
            with trio.move_on_after(LEAVE_TIMEOUT):
                await _flush(stream, outbox)
            nursery.cancel_scope.cancel()
    finally:
        logging.getLogger().removeHandler(handler)
        outbox.close()


def main(fd: int, name: str, driver_name: str) -> int:
    """Entry point of the worker subcommand; returns the process exit code."""
    logs.configure()
    # Ctrl-C in the supervisor's terminal must not reach the worker directly: the
    # supervisor decides when and how the worker leaves.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sock = socket.socket(fileno=fd)
    stream = trio.SocketStream(trio.socket.from_stdlib_socket(sock))
    log.info("worker starting name=%s pid=%d driver=%s", name, os.getpid(), driver_name)
    try:
        trio.run(serve_worker, stream, driver_name)
    except (
        trio.BrokenResourceError,
        trio.ClosedResourceError,
        codec.ProtocolError,
        EOFError,
    ) as exc:
        log.error("worker protocol ended name=%s error=%r", name, exc)
        return 1
    log.info("worker done name=%s pid=%d", name, os.getpid())
    return 0
