"""Meeting drivers: ``sim`` (a simulated meeting) and ``zoom`` (the Zoom Meeting SDK)."""

from __future__ import annotations

from appliance.drivers.base import Driver
from appliance.errors import DriverUnavailable

DRIVER_NAMES = ("sim", "zoom")


def load_driver(name: str) -> Driver:
    """Create the driver called ``name``; raise :class:`DriverUnavailable` if it can't."""
    if name == "sim":
        from appliance.drivers.sim.driver import SimDriver

        return SimDriver()
    if name == "zoom":
        from appliance.drivers.zoom import create_driver

        return create_driver()
    raise DriverUnavailable(f"unknown driver {name!r}; choose one of {DRIVER_NAMES}")
