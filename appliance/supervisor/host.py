"""Services the chosen driver needs from the host, kept for the appliance's lifetime.

The Zoom SDK delivers raw audio only when it has an audio device, which a server does
not have: the supervisor runs one private PulseAudio server (with null devices) for all
its workers and hands them its address. The simulated driver needs nothing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import trio

from appliance.config import Settings

log = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def open_host_services(settings: Settings) -> AsyncIterator[dict[str, str]]:
    """Start what the driver needs; yield the environment workers must get."""
    if settings.driver != "zoom":
        yield {}
        return
    from appliance.drivers.zoom.host_setup import HostSetupError, ensure_pulseaudio

    # A unix socket path has room for about 100 bytes, so not under the data folder.
    owned_dir = None
    runtime_dir = os.environ.get("RUNTIME_DIRECTORY", "").split(":")[0]
    if not runtime_dir:
        owned_dir = runtime_dir = tempfile.mkdtemp(prefix="hmb-")
    try:
        pulse = await trio.to_thread.run_sync(ensure_pulseaudio, Path(runtime_dir))
    except HostSetupError as exc:
        log.error("no audio device for the Zoom SDK; raw audio will be silent: %s", exc)
        yield {}
        return
    try:
        yield {"PULSE_SERVER": pulse.server}
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(pulse.stop)
            if owned_dir:
                shutil.rmtree(owned_dir, ignore_errors=True)
