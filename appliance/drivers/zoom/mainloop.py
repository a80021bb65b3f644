"""A typed layer over ``appliance._native``: iterate a GLib main context from Python.

Theory of operation
-------------------
The Zoom SDK delivers every callback from GLib sources attached to the process's
default main context, and only while that context is iterated on the thread that
initialised the SDK. The driver thread therefore loops on :meth:`MainContext.iterate`
with a short time limit; each call releases the GIL while it blocks in GLib, and
returns as soon as something was dispatched, the time limit passed, or another thread
called :meth:`MainContext.wakeup`. A wakeup sent while no iteration is blocked is not
lost: GLib keeps it pending, so the next iteration returns at once.

GLib is bound at run time by soname (see ``native/glib_loop.c``), so this module works
with or without the SDK loaded; :func:`mapped_glib_files` lets a caller check that the
SDK and this module share one GLib, without which callbacks never arrive.
"""

from __future__ import annotations

import enum
import threading
from pathlib import Path
from typing import Any

from appliance._native import ffi, lib


class GLibUnavailable(RuntimeError):
    """GLib could not be loaded or lacks a function this module needs."""


class Iteration(enum.IntEnum):
    """What one :meth:`MainContext.iterate` call did."""

    IDLE = lib.HMB_IDLE
    DISPATCHED = lib.HMB_DISPATCHED
    TIMED_OUT = lib.HMB_TIMED_OUT


_load_lock = threading.Lock()
_glib_path: str | None = None


def load_glib() -> str:
    """Load GLib once per process and return the path of the file that was bound."""
    global _glib_path
    with _load_lock:
        if _glib_path is None:
            if lib.hmb_glib_load() != 0:
                raise GLibUnavailable(ffi.string(lib.hmb_glib_error()).decode())
            _glib_path = ffi.string(lib.hmb_glib_path()).decode() or "(unknown)"
        return _glib_path


def glib_at_least(major: int, minor: int, micro: int = 0) -> bool:
    """Whether the loaded GLib is at least the given version."""
    load_glib()
    return bool(lib.hmb_glib_at_least(major, minor, micro))


def mapped_glib_files(maps: Path = Path("/proc/self/maps")) -> set[str]:
    """The distinct GLib core libraries mapped into this process.

    More than one means two copies of GLib (say, a wheel that bundles its own next to
    the system's), and then the context this module iterates may not be the one the
    SDK attached its sources to.
    """
    found: set[str] = set()
    for line in maps.read_text().splitlines():
        parts = line.split(maxsplit=5)
        if len(parts) == 6 and Path(parts[5]).name.startswith("libglib-2"):
            found.add(str(Path(parts[5]).resolve()))
    return found


def flush_c_stdio() -> None:
    """Flush C's stdio buffers (``fflush(NULL)``), for example before moving fd 1."""
    lib.hmb_stdio_flush()


class IdleCounter:
    """A counter in C memory that idle sources bump; for tests and diagnostics."""

    def __init__(self) -> None:
        self._cell: Any = ffi.new("int *")

    @property
    def value(self) -> int:
        return int(lib.hmb_read_counter(self._cell))


class MainContext:
    """One GLib main context.

    :meth:`default` is the process-wide context the SDK uses and lives forever;
    :meth:`new` makes a private one that :meth:`close` releases (tests use it so they
    never touch the default context). :meth:`wakeup` is the only method that may be
    called from any thread; the others belong to the thread that iterates.
    """

    def __init__(self, handle: Any, *, owned: bool) -> None:
        self._handle = handle
        self._owned = owned
        self._closed = False

    @classmethod
    def default(cls) -> MainContext:
        load_glib()
        return cls(lib.hmb_context_default(), owned=False)

    @classmethod
    def new(cls) -> MainContext:
        load_glib()
        return cls(lib.hmb_context_new(), owned=True)

    def iterate(self, timeout: float | None) -> Iteration:
        """Run one iteration, blocking at most ``timeout`` seconds.

        ``timeout=0`` only dispatches what is ready; ``None`` blocks until something
        is dispatched or :meth:`wakeup` is called.
        """
        self._check_open()
        if timeout is None:
            ms = -1
        else:
            ms = max(0, min(int(timeout * 1000), 2**31 - 1))
            if ms == 0 and timeout > 0:
                ms = 1
        return Iteration(lib.hmb_iterate(self._handle, ms))

    def pending(self) -> bool:
        """Whether a source is ready to be dispatched."""
        self._check_open()
        return bool(lib.hmb_pending(self._handle))

    def wakeup(self) -> None:
        """Make a blocked (or the next) :meth:`iterate` return. Thread-safe."""
        if not self._closed:
            lib.hmb_wakeup(self._handle)

    def schedule_idle_bump(self, counter: IdleCounter) -> None:
        """Attach an idle source that adds one to ``counter`` when it runs."""
        self._check_open()
        lib.hmb_idle_bump(self._handle, counter._cell)

    def close(self) -> None:
        """Release a context made by :meth:`new`; a no-op for the default one.

        Limitation: a :meth:`wakeup` from another thread racing with ``close`` on a
        private context can touch freed memory; only the default context, which is
        never freed, may be woken from other threads without coordination.
        """
        if self._closed:
            return
        self._closed = True
        if self._owned:
            lib.hmb_context_unref(self._handle)

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this main context was closed")
