"""sd_notify: the notifier on its own, then a real ``serve`` talking to a fake systemd.

The fake systemd is a unix datagram socket with ``SO_PASSCRED``, so each notification
arrives with its sender's PID: the test checks that only the supervisor speaks.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import struct
import time
from pathlib import Path

import httpx
import pytest
import trio

from appliance.supervisor import systemd
from appliance.supervisor.systemd import Notifier, socket_address
from tests.conftest import spawn_serve

WORKER_STARTED = re.compile(r"worker started name=spare-\d+ pid=(\d+)")


class FakeSystemd:
    """The receiving end of ``$NOTIFY_SOCKET``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind(str(path))

    def receive(self, timeout: float) -> tuple[int, list[str]]:
        """The next notification: its sender's PID and its lines."""
        self.sock.settimeout(timeout)
        size = struct.calcsize("3i")
        data, ancillary, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(size))
        pid = -1
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = struct.unpack("3i", payload[:size])[0]
        return pid, data.decode().split("\n")

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def fake_systemd(tmp_path: Path):
    fake = FakeSystemd(tmp_path / "notify.sock")
    yield fake
    fake.close()


def test_socket_address_forms() -> None:
    assert socket_address("/run/systemd/notify") == "/run/systemd/notify"
    assert socket_address("@hmb/notify") == b"\0hmb/notify"
    assert socket_address("vsock:2:1234") is None
    assert socket_address("") is None


def test_from_env_takes_the_variables_out_of_the_environment() -> None:
    env = {"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "30000000", "OTHER": "1"}
    notifier = Notifier.from_env(env)
    assert env == {"OTHER": "1"}
    assert notifier.enabled
    assert notifier.watchdog_interval == 15.0


def test_watchdog_for_another_process_is_ignored() -> None:
    pid = str(os.getpid() + 1)
    notifier = Notifier.from_env(
        {"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": pid}
    )
    assert notifier.watchdog_interval is None
    own = Notifier.from_env(
        {"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "x"}
    )
    assert own.watchdog_interval is None


def test_frozen_binary_accepts_its_bootloader_as_watchdog_pid(monkeypatch) -> None:
    monkeypatch.setattr(systemd.sys, "frozen", True, raising=False)
    notifier = Notifier.from_env(
        {
            "NOTIFY_SOCKET": "/x",
            "WATCHDOG_USEC": "1000000",
            "WATCHDOG_PID": str(os.getppid()),
        }
    )
    assert notifier.watchdog_interval == 0.5


def test_outside_systemd_everything_is_a_no_op() -> None:
    notifier = Notifier.from_env({})
    assert not notifier.enabled
    assert notifier.watchdog_interval is None
    assert notifier.notify("READY=1") is False


def test_notify_sends_one_datagram(fake_systemd: FakeSystemd) -> None:
    notifier = Notifier(str(fake_systemd.path))
    assert notifier.notify("READY=1", "STATUS=serving")
    pid, lines = fake_systemd.receive(5)
    assert pid == os.getpid()
    assert lines == ["READY=1", "STATUS=serving"]
    notifier.close()


def test_abstract_socket(tmp_path: Path) -> None:
    name = f"hmb-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
        receiver.bind(b"\0" + name.encode())
        receiver.settimeout(5)
        notifier = Notifier.from_env({"NOTIFY_SOCKET": "@" + name})
        assert notifier.notify("READY=1")
        assert receiver.recv(100) == b"READY=1"
        notifier.close()


def test_a_missing_socket_is_logged_not_raised(tmp_path: Path, caplog) -> None:
    notifier = Notifier(str(tmp_path / "nobody"))
    assert notifier.notify("READY=1") is False
    assert notifier.notify("WATCHDOG=1") is False
    notifier.close()
    assert len([r for r in caplog.records if "notify systemd" in r.message]) == 1


async def test_watchdog_pings_at_half_the_interval(fake_systemd: FakeSystemd) -> None:
    notifier = Notifier(str(fake_systemd.path), watchdog_usec=100_000)
    async with trio.open_nursery() as nursery:
        await nursery.start(notifier.run_watchdog)
        await trio.sleep(0.22)
        nursery.cancel_scope.cancel()
    notifier.close()
    pings = []
    fake_systemd.sock.setblocking(False)
    while True:
        try:
            pings.append(fake_systemd.sock.recv(100))
        except BlockingIOError:
            break
    # At 0, 0.05, 0.10, 0.15, 0.20 s: five, give or take a slow scheduler.
    assert 3 <= len(pings) <= 6
    assert set(pings) == {b"WATCHDOG=1"}


async def test_no_watchdog_returns_at_once() -> None:
    with trio.fail_after(1):
        await Notifier(None).run_watchdog()


def test_serve_notifies_ready_watchdog_and_stopping(
    tmp_path: Path, fake_systemd: FakeSystemd
) -> None:
    env = dict(os.environ)
    env.update(
        HTTP_ADDR="127.0.0.1:0",
        HMB_DATA_DIR=str(tmp_path / "data"),
        HMB_DRIVER="sim",
        NOTIFY_SOCKET=str(fake_systemd.path),
        WATCHDOG_USEC="200000",
    )
    log_path = tmp_path / "serve.log"
    process = spawn_serve(env, log_path)
    try:
        received: list[tuple[float, int, list[str]]] = []
        while not any("READY=1" in lines for _, _, lines in received):
            pid, lines = fake_systemd.receive(30)
            received.append((time.monotonic(), pid, lines))
        ready = received[-1][2]
        port = int(re.search(r"port (\d+)", "\n".join(ready)).group(1))
        # Ready means serving: the very next request is answered.
        assert httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200

        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            pid, lines = fake_systemd.receive(5)
            received.append((time.monotonic(), pid, lines))
        pings = [t for t, _, lines in received if lines == ["WATCHDOG=1"]]
        # Every 0.1 s, so about ten; fewer only on a badly loaded machine.
        assert len(pings) >= 3, received

        # Workers inherit the environment; systemd's variables must not reach them.
        worker_pid = int(WORKER_STARTED.search(log_path.read_text()).group(1))
        worker_env = Path(f"/proc/{worker_pid}/environ").read_bytes().split(b"\0")
        assert not [v for v in worker_env if v.startswith((b"NOTIFY_", b"WATCHDOG_"))]

        process.send_signal(signal.SIGTERM)
        while True:
            pid, lines = fake_systemd.receive(30)
            received.append((time.monotonic(), pid, lines))
            if "STOPPING=1" in lines:
                break
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert {pid for _, pid, _ in received} == {process.pid}
    kinds = [lines[0] for _, _, lines in received if lines != ["WATCHDOG=1"]]
    assert kinds == ["READY=1", "STOPPING=1"]
