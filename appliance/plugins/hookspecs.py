"""The hooks a plugin may implement, grouped by lifecycle.

Every hook is called on the plugin's own runner thread, never on the appliance's event
loop, and one at a time: a plugin needs no locks for state that only its hooks touch.
For one meeting run a plugin sees ``on_meeting_started`` first, then the run's events
in the order the appliance received them, and ``on_meeting_finished`` last. Frames may
be missing (when the plugin fell behind, its bounded queue dropped them and counted
them), but are never reordered; lifecycle events are never dropped.

A hook implementation may take any subset of the arguments named here (pluggy passes
them by name). Return values are ignored. An exception escaping a hook is caught,
counted in the meeting's stats and logged once per burst of failures; the plugin goes
on receiving events.
"""

from __future__ import annotations

import pluggy

from appliance.plugins.types import (
    AudioFrame,
    MeetingInfo,
    PluginContext,
    ShareFrame,
)
from appliance.status import MeetingStatus

PROJECT_NAME = "headless_meeting_bot"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)

# -- the plugin's own life ----------------------------------------------------------


@hookspec
def on_plugin_start(context: PluginContext) -> None:
    """Once, before any other hook, when the appliance starts.

    ``context`` names the plugin, the data folder, and its appliance-wide options.
    On the runner thread; returns nothing. Raising marks the plugin failed: it then
    receives nothing more (``GET /api/plugins`` shows it).
    """


@hookspec
def on_plugin_stop() -> None:
    """Once, last, when the appliance shuts down.

    By then every meeting has been left and its ``on_meeting_finished`` delivered, and
    what was still queued has been delivered (or dropped after the drain timeout,
    ``HMB_PLUGINS_DRAIN_TIMEOUT_S``). Close files and release what the plugin holds.
    On the runner thread; returns nothing.
    """


# -- a meeting's life ---------------------------------------------------------------


@hookspec
def on_meeting_started(meeting: MeetingInfo) -> None:
    """A bot's run in a meeting began (the join is under way) and this plugin is
    enabled for it; ``meeting.options`` are the plugin's options for this run.

    The first hook of the run. On the runner thread; never dropped; returns nothing.
    """


@hookspec
def on_meeting_status(
    meeting: MeetingInfo,
    status: MeetingStatus,
    error_code: str | None,
    error_message: str | None,
) -> None:
    """The meeting's status changed (named as the SDK names it).

    ``error_code`` and ``error_message`` are set when the status carries an error
    (``FAILED``, or an ``ENDED`` that names why). On the runner thread; never dropped;
    returns nothing.
    """


@hookspec
def on_participant_joined(meeting: MeetingInfo, user_id: int, name: str) -> None:
    """A participant is in the meeting: there when the bot arrived, or just joined.

    On the runner thread; never dropped; returns nothing.
    """


@hookspec
def on_participant_left(meeting: MeetingInfo, user_id: int, name: str) -> None:
    """A participant left the meeting.

    On the runner thread; never dropped; returns nothing.
    """


@hookspec
def on_share_started(meeting: MeetingInfo, user_id: int) -> None:
    """``user_id`` started sharing their screen; share frames follow.

    On the runner thread; never dropped; returns nothing.
    """


@hookspec
def on_share_stopped(meeting: MeetingInfo, user_id: int) -> None:
    """The screen share of ``user_id`` ended.

    On the runner thread; never dropped; returns nothing.
    """


@hookspec
def on_meeting_finished(meeting: MeetingInfo) -> None:
    """The run is over: it reached its final status (``ENDED`` or ``FAILED``, just
    delivered by ``on_meeting_status``), or it was removed or the appliance is
    shutting down first. Finalise what belongs to it (the recorder closes its files).

    The last hook of the run. On the runner thread; never dropped; returns nothing.
    """


# -- media ----------------------------------------------------------------------------


@hookspec
def on_audio_frame(meeting: MeetingInfo, frame: AudioFrame) -> None:
    """One frame of audio (mixed, one participant's, or a share's): usually 10 ms,
    320 samples, every 10 ms per stream while the SDK delivers it. Frames may come in
    bursts, a window's worth at a time (``HMB_WS_WINDOW_MS``), at most one window after
    their capture (``frame.capture_ns``).

    On the runner thread; dropped (and counted) when the plugin is behind; returns
    nothing. ``frame.pcm`` is a read-only view.
    """


@hookspec
def on_share_frame(meeting: MeetingInfo, frame: ShareFrame) -> None:
    """One picture of a screen share (a few to 30 a second).

    On the runner thread; dropped (and counted) when the plugin is behind, which
    happens sooner than for audio since share frames are large and their queue is
    short (``HMB_PLUGINS_SHARE_QUEUE``); returns nothing. The planes are read-only
    views.
    """
