"""Starting, talking to and reaping one worker process.

A worker is this same program re-invoked with the ``worker`` subcommand (so it works
from the frozen binary as from a virtual environment). It gets one end of a Unix socket
pair as an inherited file descriptor, a home folder of its own (the Zoom SDK keeps its
state under ``$HOME``), and a log file as stdout and stderr, so that whatever a native
library prints is kept but never reaches the protocol or the supervisor's output.

:func:`open_worker` guarantees the process is gone when it exits, however it exits:
it waits a grace period, then terminates, then kills, and says so.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import trio

from appliance.protocol import codec

log = logging.getLogger(__name__)

TERMINATE_GRACE = 3.0


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


async def _reap(process: trio.Process, grace: float, meeting_id: str) -> None:
    """Make sure ``process`` is gone: wait, then SIGTERM, then SIGKILL."""
    with trio.move_on_after(grace):
        await process.wait()
        return
    log.warning(
        "worker did not exit; terminating meeting_id=%s pid=%d", meeting_id, process.pid
    )
    process.terminate()
    with trio.move_on_after(TERMINATE_GRACE):
        await process.wait()
        return
    log.error(
        "worker ignored SIGTERM; killing meeting_id=%s pid=%d", meeting_id, process.pid
    )
    process.kill()
    await process.wait()


@contextlib.asynccontextmanager
async def open_worker(
    meeting_id: str,
    driver: str,
    work_dir: Path,
    *,
    exit_grace: float,
    extra_env: dict[str, str] | None = None,
) -> AsyncIterator[WorkerHandle]:
    """Start a worker for ``meeting_id`` and yield it after the HELLO exchange.

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
        "--meeting-id",
        meeting_id,
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
    log.info(
        "worker started meeting_id=%s pid=%d log=%s", meeting_id, process.pid, log_path
    )
    try:
        await handle.send(codec.Hello(pid=os.getpid()))
        yield handle
    finally:
        with trio.CancelScope(shield=True):
            await stream.aclose()
            await _reap(process, exit_grace, meeting_id)
            log.info(
                "worker gone meeting_id=%s pid=%d how=%s",
                meeting_id,
                process.pid,
                describe_exit(process.returncode),
            )
