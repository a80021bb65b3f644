"""The ``zoom`` driver: a bot in a real Zoom meeting through the Zoom Meeting SDK.

:func:`create_driver` is what :func:`appliance.drivers.load_driver` calls. It fails at
once, with :class:`~appliance.errors.DriverUnavailable` saying what to do, when the
optional ``zoom`` extra (the ``zoom-meeting-sdk`` binding) is not installed or the
operator's SDK credentials are not configured, so a misconfigured appliance says so at
start rather than on the first join.

Modules: :mod:`.driver` (the session state machine), :mod:`.media` (permission, raw
audio, shares, roster), :mod:`.adapters` (raw-data objects to events), :mod:`.auth`
(the SDK JWT), :mod:`.mainloop` (GLib through ``appliance._native``), :mod:`.guard`
(callback containment, stdout muting) and :mod:`.host_setup` (per-worker SDK home and
PulseAudio).
"""

from __future__ import annotations

import os

from appliance.drivers.base import Driver
from appliance.errors import DriverUnavailable

KEY_ENV = "ZOOM_SDK_KEY"
SECRET_ENV = "ZOOM_SDK_SECRET"


def create_driver() -> Driver:
    """A :class:`ZoomDriver` with credentials from the environment.

    Imports the SDK binding (see :func:`.driver.import_sdk` for what that does to the
    process), so call it where ``HOME`` and the fd capture are already set up.
    """
    from appliance.drivers.zoom.auth import SDKCredentials
    from appliance.drivers.zoom.driver import ZoomDriver, import_sdk

    sdk = import_sdk()
    key = os.environ.get(KEY_ENV, "")
    secret = os.environ.get(SECRET_ENV, "")
    missing = [
        name for name, value in ((KEY_ENV, key), (SECRET_ENV, secret)) if not value
    ]
    if missing:
        raise DriverUnavailable(
            f"the zoom driver needs the Meeting SDK app's client ID and secret: set "
            f"{' and '.join(missing)}"
        )
    return ZoomDriver(SDKCredentials(key, secret), sdk=sdk)
