"""Serving the Quart-Trio app with Hypercorn's Trio worker, on our own listener.

Hypercorn's own ``serve`` binds and wraps sockets itself; this does the same steps
(lifespan, one TCPServer per connection) over a :class:`FrontDoorListener`, so every
connection is a :class:`~appliance.http.front_door.DirectWriteStream` the audio bus can
write to.

Limitation: this uses Hypercorn's TCPServer, Lifespan and WorkerContext classes, which
are not public API, so the Hypercorn version is pinned in pyproject.toml.
"""

from __future__ import annotations

import logging
from functools import partial

import trio
from hypercorn.app_wrappers import ASGIWrapper
from hypercorn.config import Config
from hypercorn.trio.lifespan import Lifespan
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import ConnectionState
from quart_trio import QuartTrio

from appliance.http.front_door import ConnectionRegistry, FrontDoorListener

log = logging.getLogger(__name__)


def hypercorn_config() -> Config:
    config = Config()
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    config.graceful_timeout = 5.0
    # Audio clients only read; their connection must not be closed as idle.
    config.read_timeout = None
    config.websocket_ping_interval = None
    return config


async def serve_http(
    app: QuartTrio,
    host: str,
    port: int,
    connections: ConnectionRegistry,
    stop: trio.Event,
    *,
    task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` on ``host:port`` until ``stop`` is set; reports the bound address.

    On ``stop`` the listeners close, open connections are closed, and the app's
    lifespan shutdown runs, in that order.
    """
    config = hypercorn_config()
    wrapped = ASGIWrapper(app)
    lifespan_state: dict = {}
    lifespan = Lifespan(wrapped, config, lifespan_state)
    context = WorkerContext(None)
    listeners = await trio.open_tcp_listeners(port, host=host or None)
    front_doors = [FrontDoorListener(listener, connections) for listener in listeners]
    bound = listeners[0].socket.getsockname()[:2]

    async with trio.open_nursery() as lifespan_nursery:
        await lifespan_nursery.start(lifespan.handle_lifespan)
        await lifespan.wait_for_startup()
        async with trio.open_nursery() as connections_nursery:
            serve = partial(
                TCPServer, wrapped, config, context, ConnectionState(lifespan_state)
            )
            await connections_nursery.start(
                partial(
                    trio.serve_listeners,
                    serve,
                    front_doors,
                    handler_nursery=connections_nursery,
                )
            )
            log.info("serving address=http://%s:%d", bound[0], bound[1])
            task_status.started(bound)
            await stop.wait()
            log.info("closing connections count=%d", len(connections))
            connections_nursery.cancel_scope.cancel()
        with trio.move_on_after(config.graceful_timeout):
            await lifespan.wait_for_shutdown()
        lifespan_nursery.cancel_scope.cancel()
