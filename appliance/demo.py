"""The demo meeting that ``serve --demo`` starts once the appliance is ready."""

from __future__ import annotations

import logging

from appliance.errors import ApplianceError
from appliance.supervisor.meetings import MeetingRegistry

log = logging.getLogger(__name__)

DEMO_MEETING_ID = "1234567890"


async def start_demo_meeting(bound: tuple[str, int], meetings: MeetingRegistry) -> None:
    if meetings.settings.driver != "sim":
        log.warning("--demo needs the sim driver; no demo meeting started")
        return
    try:
        meetings.start({"meeting_id": DEMO_MEETING_ID, "display_name": "Demo Bot"})
    except ApplianceError as exc:
        log.error("demo meeting not started: %s", exc.message)
        return
    host = "127.0.0.1" if bound[0] in ("0.0.0.0", "::") else bound[0]
    log.info(
        "demo meeting started meeting_id=%s listen=ws://%s:%d/ws/audio/%s",
        DEMO_MEETING_ID,
        host,
        bound[1],
        DEMO_MEETING_ID,
    )
