"""The supervisor: one Trio nursery that owns everything, and the order of shutdown.

Start-up: plugins are loaded (a plugin that ``HMB_PLUGINS`` asks for must load), their
runners start, then the meetings nursery, then the HTTP server; ready once the server
serves, and only then is systemd told so (``READY=1``, :mod:`.systemd`).
Shutdown (SIGTERM, SIGINT, or the caller cancelling ``shutdown_trigger``):

1. stop accepting new meetings;
2. leave every meeting and wait for its worker to exit (WebSocket clients get their
   ``error`` message and close while the HTTP server still runs);
3. let plugin runners drain what is queued, finalise (the recorder closes its files)
   and end their threads;
4. stop the HTTP server;
5. return. No worker outlives this function: the meetings nursery reaps them.
"""

from __future__ import annotations

import gc
import logging
import signal
import time
from collections.abc import Awaitable, Callable

import trio

from appliance.config import ConfigError, Settings
from appliance.http.app import create_app
from appliance.http.front_door import ConnectionRegistry
from appliance.http.server import serve_http
from appliance.plugins.manager import PluginManager
from appliance.supervisor.host import open_host_services
from appliance.supervisor.meetings import MeetingRegistry
from appliance.supervisor.systemd import Notifier

log = logging.getLogger(__name__)

GC_YOUNG_THRESHOLD = 10_000
GC_PAUSE_WARNING_S = 0.02


def watch_gc_pauses(threshold_s: float = GC_PAUSE_WARNING_S) -> None:
    """Log every garbage-collection pause longer than ``threshold_s``.

    A pause stops every meeting's audio at once, so it is worth seeing in the log.
    """
    started: list[float] = [0.0]

    def callback(phase: str, info: dict) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
            return
        pause = time.perf_counter() - started[0]
        if pause > threshold_s:
            log.warning(
                "gc pause ms=%.1f generation=%d collected=%d",
                pause * 1000,
                info["generation"],
                info["collected"],
            )

    gc.callbacks.append(callback)


async def wait_for_signal() -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            log.info("shutting down signal=%s", signal.Signals(signum).name)
            return


async def serve(
    settings: Settings,
    *,
    shutdown_trigger: Callable[[], Awaitable[None]] = wait_for_signal,
    on_ready: Callable[[tuple[str, int], MeetingRegistry], Awaitable[None]]
    | None = None,
) -> None:
    """Run the appliance until ``shutdown_trigger`` returns, then shut down in order."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    systemd = Notifier.from_env()
    try:
        plugins = PluginManager.load(settings)
    except ConfigError as exc:
        log.error("not starting: %s", exc)
        raise SystemExit(2) from None
    meetings = MeetingRegistry(settings)
    meetings.observers.append(plugins)
    connections = ConnectionRegistry()
    app = create_app(meetings, settings, connections, plugins)
    async with (
        open_host_services(settings) as worker_env,
        trio.open_nursery() as nursery,
    ):
        meetings.pool.extra_env.update(worker_env)
        await nursery.start(systemd.run_watchdog)
        await nursery.start(plugins.run)
        await nursery.start(meetings.run)
        stop_http = trio.Event()
        async with trio.open_nursery() as http_nursery:
            bound = await http_nursery.start(
                serve_http,
                app,
                settings.http_host,
                settings.http_port,
                connections,
                stop_http,
            )
            log.info(
                "ready driver=%s data_dir=%s window_ms=%g",
                settings.driver,
                settings.data_dir,
                settings.ws_window * 1000,
            )
            systemd.notify("READY=1", f"STATUS=serving on port {bound[1]}")
            # What exists now (modules, the app) lives as long as the process: keep
            # full collections from walking it, and collect young objects less
            # often, since a pause delays every client of every meeting.
            gc.freeze()
            gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
            watch_gc_pauses()
            if on_ready is not None:
                await on_ready(bound, meetings)
            await shutdown_trigger()
            systemd.notify("STOPPING=1", "STATUS=leaving every meeting")
            await meetings.leave_all()
            await plugins.aclose()
            stop_http.set()
        nursery.cancel_scope.cancel()
    systemd.close()
    log.info("stopped")
