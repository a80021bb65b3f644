"""Meeting drivers: ``sim`` (a simulated meeting) and ``zoom`` (the Zoom SDK)."""

from __future__ import annotations

from appliance.drivers.base import Driver
from appliance.errors import DriverUnavailable

DRIVER_NAMES = ("sim", "zoom")


def load_driver(name: str) -> Driver:
    """The driver called ``name``; :class:`DriverUnavailable` if it cannot run."""
    if name == "sim":
        from appliance.drivers.sim.driver import SimDriver

        return SimDriver()
    if name == "zoom":
        from appliance.drivers.zoom import create_driver

        return create_driver()
    raise DriverUnavailable(f"unknown driver {name!r}; choose one of {DRIVER_NAMES}")
