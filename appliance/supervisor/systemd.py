"""systemd's service notifications (``sd_notify``), written out: no libsystemd binding.

Under ``Type=notify`` systemd passes ``$NOTIFY_SOCKET``, a unix datagram socket (a
path, or an abstract name written with a leading ``@``), and, with ``WatchdogSec=``,
``$WATCHDOG_USEC``. A notification is one datagram of ``KEY=VALUE`` lines. The
supervisor sends ``READY=1`` once its HTTP server serves, ``WATCHDOG=1`` at half the
watchdog interval while its event loop runs, and ``STOPPING=1`` when shutdown starts.

:meth:`Notifier.from_env` takes these variables out of ``os.environ``, as
``sd_notify``'s ``unset_environment`` does, so worker processes (which inherit the
environment) never talk to systemd in the supervisor's name.

In the one-file binary the process systemd started is PyInstaller's bootloader and
Python runs in its child, so notifications come from a process that is not the
service's main PID: the unit needs ``NotifyAccess=all``, and ``$WATCHDOG_PID`` names
our parent, which is accepted here when frozen.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from collections.abc import MutableMapping

import trio

log = logging.getLogger(__name__)

ENV_NAMES = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


def socket_address(value: str) -> str | bytes | None:
    """``$NOTIFY_SOCKET`` as an ``AF_UNIX`` address (``None`` if unusable)."""
    if value.startswith("@"):
        # An abstract socket: a leading NUL byte instead of the "@".
        return b"\0" + value[1:].encode()
    if value.startswith("/"):
        return value
    # Limitation: vsock addresses (vsock:CID:PORT, systemd 253+ for VMs notifying
    # their host) are not supported; such a NOTIFY_SOCKET is ignored with a warning.
    return None


def _watchdog_for_us(pid_value: str) -> bool:
    if not pid_value:
        return True
    try:
        pid = int(pid_value)
    except ValueError:
        return False
    if pid == os.getpid():
        return True
    # The frozen binary's bootloader is the main PID; Python runs in its child.
    return bool(getattr(sys, "frozen", False)) and pid == os.getppid()


class Notifier:
    """Sends notifications to systemd; every method is a no-op outside systemd."""

    def __init__(self, address: str | bytes | None, watchdog_usec: int = 0) -> None:
        self.address = address
        self.watchdog_usec = watchdog_usec
        self._sock: socket.socket | None = None
        self._warned = False

    @classmethod
    def from_env(cls, env: MutableMapping[str, str] | None = None) -> Notifier:
        """A notifier for what systemd passed; the variables are removed from ``env``
        (``os.environ`` by default) so child processes do not inherit them."""
        env = os.environ if env is None else env
        values = {name: env.pop(name, "") for name in ENV_NAMES}
        address = socket_address(values["NOTIFY_SOCKET"])
        if values["NOTIFY_SOCKET"] and address is None:
            log.warning(
                "NOTIFY_SOCKET is not a unix socket; not notifying systemd value=%s",
                values["NOTIFY_SOCKET"],
            )
        usec = 0
        if values["WATCHDOG_USEC"] and _watchdog_for_us(values["WATCHDOG_PID"]):
            try:
                usec = max(0, int(values["WATCHDOG_USEC"]))
            except ValueError:
                log.warning("WATCHDOG_USEC is not a number; no watchdog pings")
        return cls(address, usec)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    @property
    def watchdog_interval(self) -> float | None:
        """Seconds between ``WATCHDOG=1`` pings (half the timeout), or ``None``."""
        if not self.enabled or not self.watchdog_usec:
            return None
        return self.watchdog_usec / 2 / 1_000_000

    def notify(self, *lines: str) -> bool:
        """Send ``lines`` (``"READY=1"``, ``"STATUS=..."``) as one notification.

        Never raises: a notification that cannot be sent is logged once, and systemd
        then acts on its own timeouts.
        """
        if self.address is None:
            return False
        message = "\n".join(lines).encode()
        try:
            if self._sock is None:
                self._sock = socket.socket(
                    socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC
                )
            # A datagram to a unix socket either fits in the receive queue or
            # fails at once; systemd's queue is never full for long.
            self._sock.sendto(message, self.address)
        except OSError as exc:
            if not self._warned:
                self._warned = True
                log.warning("could not notify systemd error=%r", exc)
            return False
        return True

    async def run_watchdog(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Ping the watchdog until cancelled; returns at once when there is none.

        The pings come from the event loop, so a supervisor whose loop is stuck
        stops pinging and systemd restarts it.

        Limitation: only the event loop's liveness is watched; a task that waits
        forever without blocking the loop (a wedged meeting, say) does not stop them.
        """
        interval = self.watchdog_interval
        task_status.started()
        if interval is None:
            return
        log.info("systemd watchdog pings every %.3g s", interval)
        while True:
            self.notify("WATCHDOG=1")
            await trio.sleep(interval)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
