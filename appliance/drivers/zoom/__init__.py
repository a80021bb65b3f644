"""The ``zoom`` driver: a bot in a real Zoom meeting through the Zoom Meeting SDK.

:func:`create_driver` is what :func:`appliance.drivers.load_driver` calls. It fails at
once, with :class:`~appliance.errors.DriverUnavailable` saying what to do, when the
optional ``zoom`` extra (the ``zoom-meeting-sdk`` binding) is not installed or the
operator's SDK credentials are not configured, so a misconfigured appliance says so at
start rather than on the first join.

Modules: :mod:`.driver` (the thread-safe face), :mod:`.session` (one run, InitSDK
to CleanUPSDK), :mod:`.media` (permission, raw audio, shares, roster),
:mod:`.adapters` (raw-data objects to events), :mod:`.auth` (the SDK JWT),
:mod:`.mainloop` (GLib through ``appliance._native``), :mod:`.guard` (callback
containment, the gated events sink, stdout muting) and :mod:`.host_setup`
(per-worker SDK home and PulseAudio).
"""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path

from appliance.drivers.base import Driver
from appliance.errors import DriverUnavailable

logger = logging.getLogger(__name__)

KEY_ENV = "ZOOM_SDK_KEY"
SECRET_ENV = "ZOOM_SDK_SECRET"


def check_available() -> None:
    """Raise :class:`DriverUnavailable` if joins cannot work on this host at all.

    Cheap and side-effect free (the binding is located, not imported), so the
    supervisor calls it at start and refuses to serve a driver that cannot run.
    """
    from appliance.drivers.zoom.driver import INSTALL_HINT

    if importlib.util.find_spec("zoom_meeting_sdk") is None:
        raise DriverUnavailable(INSTALL_HINT)
    missing = [name for name in (KEY_ENV, SECRET_ENV) if not os.environ.get(name)]
    if missing:
        raise DriverUnavailable(
            f"the zoom driver needs the Meeting SDK app's client ID and secret: set "
            f"{' and '.join(missing)}"
        )


def create_driver() -> Driver:
    """A :class:`ZoomDriver` with credentials from the environment.

    Lays out ``$HOME`` for the SDK (:func:`.host_setup.prepare_sdk_home`), then
    imports the binding (see :func:`.driver.import_sdk` for what that does to the
    process), so call it where ``HOME`` (one per worker) and the fd capture are
    already set up.
    """
    from appliance.drivers.zoom import host_setup
    from appliance.drivers.zoom.auth import SDKCredentials
    from appliance.drivers.zoom.driver import ZoomDriver, import_sdk

    host_setup.prepare_sdk_home(Path.home())
    sdk = import_sdk()
    if not host_setup.pulse_server_available():
        logger.warning(
            "no PulseAudio server is reachable (PULSE_SERVER=%r): the SDK will have "
            "no audio device and raw audio may stay silent",
            os.environ.get("PULSE_SERVER", ""),
        )
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
