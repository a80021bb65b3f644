"""Starting, talking to and reaping worker processes, and keeping spares warm.

A worker is this same program re-invoked with the ``worker`` subcommand (so it works
from the frozen binary as from a virtual environment). It gets one end of a Unix socket
pair as an inherited file descriptor, a home folder of its own (the Zoom SDK keeps its
state under ``$HOME``), and a log file as stdout and stderr, so that whatever a native
library prints is kept but never reaches the protocol or the supervisor's output.

:func:`open_worker` guarantees the process is gone when it exits, however it exits:
it waits a grace period, then terminates, then kills, and says so.

Starting Python and importing a driver takes about 300 ms, longer than the simulated
join itself, and the Zoom SDK's libraries take longer still. So :class:`WorkerPool`
keeps spare workers that have started, loaded their driver and said HELLO, waiting for
a ``JOIN``. A meeting leases one, and the pool starts the next spare. The pool's own
task owns every process, spare or leased, so each is reaped by the task that started it.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import signal
import socket
import subprocess
import sys
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import trio

from appliance.protocol import codec

log = logging.getLogger(__name__)

TERMINATE_GRACE = 3.0
HANDSHAKE_TIMEOUT = 30.0


def self_command() -> list[str]:
    """How to run this program again: the frozen binary, or this interpreter."""
    if getattr(sys, "frozen", False):
        return [sys.executable]
    return [sys.executable, "-m", "appliance"]


def describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "still running"
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exited with code {returncode}"


@dataclass
class WorkerHandle:
    process: trio.Process
    stream: trio.SocketStream
    decoder: codec.Decoder
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    async def send(self, event: codec.Event) -> None:
        await self.stream.send_all(codec.encode(event))


async def _reap(process: trio.Process, grace: float, name: str) -> None:
    """Make sure ``process`` is gone: wait, then SIGTERM, then SIGKILL."""
    with trio.move_on_after(grace):
        await process.wait()
        return
    log.warning("worker did not exit; terminating name=%s pid=%d", name, process.pid)
    process.terminate()
    with trio.move_on_after(TERMINATE_GRACE):
        await process.wait()
        return
    log.error("worker ignored SIGTERM; killing name=%s pid=%d", name, process.pid)
    process.kill()
    await process.wait()


@contextlib.asynccontextmanager
async def open_worker(
    name: str,
    driver: str,
    work_dir: Path,
    *,
    exit_grace: float,
    extra_env: dict[str, str] | None = None,
) -> AsyncIterator[WorkerHandle]:
    """Start a worker called ``name`` and yield it once it has said HELLO.

    On exit the socket is closed (which tells a live worker to leave) and the process
    is reaped, even when the caller is cancelled.
    """
    home = work_dir / "home"
    home.mkdir(parents=True, exist_ok=True)
    log_path = work_dir / "worker.log"
    parent_sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    env = dict(os.environ)
    env.update(extra_env or {})
    env["HOME"] = str(home)
    command = [
        *self_command(),
        "worker",
        "--fd",
        str(child_sock.fileno()),
        "--name",
        name,
        "--driver",
        driver,
    ]
    with open(log_path, "ab") as log_file:
        try:
            process = await trio.lowlevel.open_process(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                pass_fds=(child_sock.fileno(),),
                env=env,
                cwd=str(work_dir),
                # A terminal's Ctrl-C goes to the supervisor only; it decides how
                # each worker leaves.
                start_new_session=True,
            )
        finally:
            child_sock.close()
    stream = trio.SocketStream(trio.socket.from_stdlib_socket(parent_sock))
    handle = WorkerHandle(process, stream, codec.Decoder(), log_path)
    log.info("worker started name=%s pid=%d log=%s", name, process.pid, log_path)
    try:
        await handle.send(codec.Hello(pid=os.getpid()))
        with trio.fail_after(HANDSHAKE_TIMEOUT):
            while handle.decoder.next_event() is None:
                data = await stream.receive_some()
                if not data:
                    raise codec.ProtocolError("worker closed before HELLO")
                handle.decoder.feed(data)
        yield handle
    finally:
        with trio.CancelScope(shield=True):
            await stream.aclose()
            await _reap(process, exit_grace, name)
            log.info(
                "worker gone name=%s pid=%d how=%s",
                name,
                process.pid,
                describe_exit(process.returncode),
            )


@dataclass
class LeasedWorker:
    """A worker lent to one meeting. Set ``released`` when done; ``gone`` follows."""

    handle: WorkerHandle
    work_dir: Path
    released: trio.Event = field(default_factory=trio.Event)
    gone: trio.Event = field(default_factory=trio.Event)

    @property
    def pid(self) -> int:
        return self.handle.pid

    @property
    def returncode(self) -> int | None:
        return self.handle.process.returncode


class WorkerPool:
    """Starts workers and keeps ``spares`` of them warm, waiting for a meeting."""

    def __init__(
        self, driver: str, workers_dir: Path, *, spares: int, exit_grace: float
    ) -> None:
        self.driver = driver
        self.workers_dir = workers_dir
        self.spares = spares
        self.exit_grace = exit_grace
        # Set before the pool runs: what every worker's environment adds.
        self.extra_env: dict[str, str] = {}
        self._ready: deque[LeasedWorker] = deque()
        self._starting = 0
        self._numbers = itertools.count(1)
        self._nursery: trio.Nursery | None = None

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Own every worker process until cancelled."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self._replenish()
            task_status.started()
            await trio.sleep_forever()

    async def lease(self, meeting_id: str) -> LeasedWorker:
        """A worker for ``meeting_id``, its folder renamed after the meeting."""
        assert self._nursery is not None, "the pool is not running"
        worker = None
        while self._ready:
            candidate = self._ready.popleft()
            if candidate.returncode is None:
                worker = candidate
                break
            candidate.released.set()
        if worker is None:
            worker = await self._nursery.start(self._hold)
        self._replenish()
        number = worker.work_dir.name.rsplit("-", 1)[-1]
        named = self.workers_dir / f"{meeting_id}-{number}"
        # The worker keeps working in the renamed folder: its log file is an open
        # descriptor, and the JOIN message tells it its new HOME.
        worker.work_dir.rename(named)
        worker.work_dir = named
        return worker

    def close_spares(self) -> None:
        """Dismiss the waiting spares and start no more (shutdown)."""
        self.spares = 0
        while self._ready:
            self._ready.popleft().released.set()

    def _replenish(self) -> None:
        while len(self._ready) + self._starting < self.spares:
            self._starting += 1
            self._nursery.start_soon(self._start_spare)

    async def _start_spare(self) -> None:
        try:
            worker = await self._nursery.start(self._hold)
        except (OSError, trio.BrokenResourceError, trio.TooSlowError) as exc:
            log.error("could not start a spare worker error=%r", exc)
            return
        except codec.ProtocolError as exc:
            log.error("spare worker failed its handshake error=%r", exc)
            return
        finally:
            self._starting -= 1
        if self.spares:
            self._ready.append(worker)
        else:
            worker.released.set()

    async def _hold(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        work_dir = self.workers_dir / f"spare-{next(self._numbers)}"
        worker = None
        try:
            async with open_worker(
                work_dir.name,
                self.driver,
                work_dir,
                exit_grace=self.exit_grace,
                extra_env=self.extra_env,
            ) as handle:
                worker = LeasedWorker(handle, work_dir)
                task_status.started(worker)
                await worker.released.wait()
        finally:
            if worker is not None:
                worker.gone.set()
