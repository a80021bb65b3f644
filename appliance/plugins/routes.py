"""REST endpoints of the plugin system and of the built-in plugins.

``GET /api/plugins`` lists what is loaded. The recordings and share endpoints read
what the built-in recorder and share capture wrote to disk (and, for the latest share
frame of a live meeting, the share capture's memory), so they answer for meetings that
were removed, too. File system work and image encoding run on worker threads, never on
the event loop. Errors are raised as :mod:`appliance.errors`; the application turns
them into responses.
"""

from __future__ import annotations

import json

import trio
from quart import Response, send_file
from quart_trio import QuartTrio

from appliance.config import Settings
from appliance.errors import ShareNotFound
from appliance.plugins.manager import PluginManager
from appliance.supervisor.meetings import MeetingRegistry
from plugins.recorder import files as recordings
from plugins.share_capture import files as shares


def _json(body: object) -> Response:
    return Response(json.dumps(body), content_type="application/json")


def add_plugin_routes(
    app: QuartTrio,
    meetings: MeetingRegistry,
    settings: Settings,
    plugins: PluginManager | None,
) -> None:
    """Add the plugin endpoints to ``app``."""

    @app.get("/api/plugins")
    async def list_plugins() -> Response:
        return _json(plugins.describe() if plugins is not None else [])

    @app.get("/api/meetings/<meeting_id>/recordings")
    async def list_recordings(meeting_id: str) -> Response:
        listing = await trio.to_thread.run_sync(
            recordings.list_recordings, settings.data_dir, meeting_id
        )
        if listing is None:
            meetings.get(meeting_id)  # MEETING_NOT_FOUND unless it is here
            listing = []
        return _json(listing)

    @app.get("/api/meetings/<meeting_id>/recordings/<path:name>")
    async def get_recording(meeting_id: str, name: str) -> Response:
        path = await trio.to_thread.run_sync(
            recordings.find_recording, settings.data_dir, meeting_id, name
        )
        return await send_file(
            path,
            mimetype="audio/wav",
            as_attachment=True,
            attachment_filename=f"{meeting_id.strip()}-{name.replace('/', '-')}",
            # A file may still be growing: never serve it from a cache.
            cache_timeout=0,
        )

    @app.get("/api/meetings/<meeting_id>/share/latest.png")
    async def latest_share(meeting_id: str) -> Response:
        capture = plugins.plugin("share_capture") if plugins is not None else None
        png = None
        if capture is not None and hasattr(capture, "latest_png"):
            png = await trio.to_thread.run_sync(capture.latest_png, meeting_id)
        if png is None:
            path = await trio.to_thread.run_sync(
                shares.latest_snapshot, settings.data_dir, meeting_id
            )
            if path is not None:
                png = await trio.to_thread.run_sync(path.read_bytes)
        if png is None:
            meetings.get(meeting_id)  # MEETING_NOT_FOUND unless it is here
            raise ShareNotFound(
                f"meeting {meeting_id.strip()} has no share frame: nothing was shared "
                "yet, or share capture is not enabled for it"
            )
        return Response(
            png, content_type="image/png", headers={"Cache-Control": "no-store"}
        )
