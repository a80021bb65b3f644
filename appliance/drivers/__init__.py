"""Meeting drivers: ``sim`` (a simulated meeting) and ``zoom`` (the Zoom SDK)."""

from __future__ import annotations

import contextlib
import importlib

from appliance.drivers.base import Driver
from appliance.errors import DriverUnavailable

DRIVER_NAMES = ("sim", "zoom")


DRIVER_MODULES = {
    "sim": "appliance.drivers.sim.driver",
    "zoom": "appliance.drivers.zoom",
}


def preload_driver(name: str) -> None:
    """Import a driver's code ahead of time (a spare worker does, before its JOIN).

    Import failures are left for :func:`load_driver` to report properly.
    """
    if name in DRIVER_MODULES:
        with contextlib.suppress(ImportError):
            importlib.import_module(DRIVER_MODULES[name])


def check_driver(name: str) -> None:
    """Raise :class:`DriverUnavailable` if driver ``name`` cannot run on this host."""
    if name == "zoom":
        from appliance.drivers.zoom import check_available

        check_available()
    elif name not in DRIVER_NAMES:
        raise DriverUnavailable(
            f"unknown driver {name!r}; choose one of {DRIVER_NAMES}"
        )


def load_driver(name: str) -> Driver:
    """The driver called ``name``; :class:`DriverUnavailable` if it cannot run."""
    if name == "sim":
        from appliance.drivers.sim.driver import SimDriver

        return SimDriver()
    if name == "zoom":
        from appliance.drivers.zoom import create_driver

        return create_driver()
    raise DriverUnavailable(f"unknown driver {name!r}; choose one of {DRIVER_NAMES}")
