"""The real driver: one bot in one Zoom meeting through the Zoom Meeting SDK for Linux.

Theory of operation
-------------------
:class:`ZoomDriver` is the thread-safe face the worker sees. :meth:`ZoomDriver.run`
runs on the driver thread and hands everything to one :class:`.session.Session`, whose
docstring walks through the steps (``InitSDK``, ``SDKAuth``, ``Join``, the meeting,
``CleanUPSDK``). :meth:`ZoomDriver.request_leave`, callable from any thread at any
time, only sets a flag and wakes the GLib context the session iterates, so the
session notices within one iteration and leaves on its own thread.
"""

from __future__ import annotations

import threading
from types import ModuleType

from appliance.drivers.base import Driver, DriverEvents, JoinRequest
from appliance.drivers.zoom.auth import SDKCredentials
from appliance.drivers.zoom.guard import GatedEvents
from appliance.drivers.zoom.mainloop import MainContext
from appliance.drivers.zoom.session import Session
from appliance.errors import DriverUnavailable

INSTALL_HINT = (
    "the zoom driver needs the zoom extra: pip install 'headless-meeting-bot[zoom]'"
)
AUTH_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 60.0
LEAVE_TIMEOUT_S = 10.0


def import_sdk() -> ModuleType:
    """Import the binding, or raise :class:`DriverUnavailable` saying what is missing.

    Importing it loads the SDK (about 200 MB of libraries), writes under ``$HOME`` and
    prints to fds 1 and 2, so the worker sets ``HOME`` and captures its fds first.
    """
    try:
        import zoom_meeting_sdk
    except ImportError as exc:
        detail = str(exc)
        if "cannot open shared object file" in detail:
            raise DriverUnavailable(
                f"the Zoom SDK is installed but a system library it needs is missing "
                f"({detail}); see the README for the Debian packages it needs"
            ) from exc
        raise DriverUnavailable(f"{INSTALL_HINT} ({detail})") from exc
    return zoom_meeting_sdk


class ZoomDriver(Driver):
    """The Zoom Meeting SDK driver; see the module docstring."""

    name = "zoom"

    def __init__(
        self,
        credentials: SDKCredentials,
        *,
        sdk: ModuleType | None = None,
        auth_timeout_s: float = AUTH_TIMEOUT_S,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
        leave_timeout_s: float = LEAVE_TIMEOUT_S,
        context: MainContext | None = None,
    ) -> None:
        """``sdk`` and ``context`` stand in for the binding and GLib's default
        context; tests pass fakes, production passes neither."""
        self._credentials = credentials
        self._sdk = sdk
        self._context = context
        self.auth_timeout_s = auth_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.leave_timeout_s = leave_timeout_s
        self._leave = threading.Event()
        self._ctx_lock = threading.Lock()
        self._ctx: MainContext | None = None

    def run(self, request: JoinRequest, events: DriverEvents) -> None:
        Session(self, request, GatedEvents(events)).execute()

    def request_leave(self) -> None:
        self._leave.set()
        with self._ctx_lock:
            if self._ctx is not None:
                self._ctx.wakeup()

    @property
    def leave_requested(self) -> bool:
        return self._leave.is_set()

    def _attach(self, ctx: MainContext | None) -> None:
        with self._ctx_lock:
            self._ctx = ctx

    def _sdk_module(self) -> ModuleType:
        if self._sdk is None:
            self._sdk = import_sdk()
        return self._sdk
