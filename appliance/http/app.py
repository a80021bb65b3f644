"""The REST API and the WebSocket handshake, on Quart-Trio.

This is the only place where an :class:`~appliance.errors.ApplianceError` becomes an
HTTP response or a WebSocket close. Audio bytes do not pass through here: once a
WebSocket is accepted the handler attaches the client's socket to the meeting's bus
(see :mod:`appliance.http.front_door`) and only waits for the stream to end.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import trio
from quart import Response, request, websocket
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException

from appliance import __version__
from appliance.bus.audio_bus import StreamFilter
from appliance.config import Settings
from appliance.errors import ApplianceError, ErrorCode, InvalidRequest
from appliance.http.front_door import ConnectionRegistry
from appliance.plugins.manager import PluginManager
from appliance.plugins.routes import add_plugin_routes
from appliance.supervisor.meetings import MeetingRegistry

log = logging.getLogger(__name__)

MAX_QUEUE_SIZE = 100_000


def _error_response(error: ApplianceError) -> Response:
    body = json.dumps({"error": error.to_dict()})
    return Response(
        body, status=error.code.http_status, content_type="application/json"
    )


def create_app(
    meetings: MeetingRegistry,
    settings: Settings,
    connections: ConnectionRegistry,
    plugins: PluginManager | None = None,
) -> QuartTrio:
    """The Quart-Trio application of one appliance."""
    app = QuartTrio("headless_meeting_bot")
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024

    @app.errorhandler(ApplianceError)
    async def on_appliance_error(error: ApplianceError) -> Response:
        return _error_response(error)

    @app.errorhandler(HTTPException)
    async def on_http_error(error: HTTPException) -> Response:
        body = {
            "error": {"code": "HTTP_" + str(error.code), "message": error.description}
        }
        return Response(
            json.dumps(body), status=error.code or 500, content_type="application/json"
        )

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "version": __version__,
            "driver": settings.driver,
            "meetings": len(meetings.all()),
            "plugins": plugins.health() if plugins is not None else {},
        }

    @app.post("/api/meetings")
    async def create_meeting() -> tuple[dict[str, str], int]:
        body = await request.get_json(force=True, silent=True)
        if body is None:
            raise InvalidRequest("the body must be JSON")
        meetings.start(body)
        return {"status": "joining"}, 202

    @app.get("/api/meetings")
    async def list_meetings() -> Response:
        body = json.dumps([m.summary() for m in meetings.all()])
        return Response(body, content_type="application/json")

    @app.get("/api/meetings/<meeting_id>")
    async def get_meeting(meeting_id: str) -> dict[str, Any]:
        meeting = meetings.get(meeting_id)
        detail = meeting.detail()
        if plugins is not None:
            detail["stats"].update(plugins.meeting_stats(meeting))
        return detail

    @app.delete("/api/meetings/<meeting_id>")
    async def delete_meeting(meeting_id: str) -> dict[str, str]:
        await meetings.leave(meeting_id)
        return {"status": "left"}

    add_plugin_routes(app, meetings, settings, plugins)

    @app.websocket("/ws/audio/<meeting_id>")
    async def audio_stream(meeting_id: str) -> None:
        await _serve_audio_stream(meetings, settings, connections, meeting_id)

    return app


def _parse_stream_args(settings: Settings) -> tuple[StreamFilter, int]:
    args = websocket.args
    stream_filter = StreamFilter.parse(args.get("type"), args.get("user_id"))
    raw_size = args.get("queue_size")
    if raw_size is None or raw_size == "":
        return stream_filter, settings.ws_default_queue_size
    try:
        queue_size = int(raw_size)
    except ValueError:
        raise InvalidRequest(
            f"queue_size must be an integer, got {raw_size!r}"
        ) from None
    if not 1 <= queue_size <= MAX_QUEUE_SIZE:
        raise InvalidRequest(f"queue_size must be between 1 and {MAX_QUEUE_SIZE}")
    return stream_filter, queue_size


async def _refuse(error: ApplianceError) -> None:
    await websocket.accept()
    await websocket.send(
        json.dumps({"type": "error", "error": error.message, "code": error.code.name})
    )
    await websocket.close(error.code.close_code, error.code.name)


async def _serve_audio_stream(
    meetings: MeetingRegistry,
    settings: Settings,
    connections: ConnectionRegistry,
    meeting_id: str,
) -> None:
    try:
        stream_filter, queue_size = _parse_stream_args(settings)
        meeting = meetings.get(meeting_id)
    except ApplianceError as error:
        await _refuse(error)
        return
    if meeting.audio.closed:
        await _refuse(
            meeting.error
            or ApplianceError("the meeting is over", code=ErrorCode.MEETING_ENDED)
        )
        return
    connection = connections.find(websocket.scope.get("client"))
    if connection is None:
        log.error("no direct connection for client=%s", websocket.scope.get("client"))
        await _refuse(ApplianceError("the connection is not the appliance's own"))
        return

    await websocket.accept()
    subscriber = meeting.audio.subscribe(connection, stream_filter, queue_size)
    log.debug(
        "audio client connected meeting_id=%s client=%s", meeting_id, connection.peer
    )
    close_code = None
    try:
        async with trio.open_nursery() as nursery:

            async def drain() -> None:
                nonlocal close_code
                close_code = await subscriber.serve()
                nursery.cancel_scope.cancel()

            nursery.start_soon(drain)
            # Client messages are not part of the protocol; reading them keeps the
            # connection's control frames flowing until the client goes away.
            while True:
                await websocket.receive()
    finally:
        meeting.audio.unsubscribe(subscriber)
    if close_code is not None:
        await websocket.close(close_code)
