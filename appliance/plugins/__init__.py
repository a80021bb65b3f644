"""Plugins: code that runs inside the appliance and hears every meeting live.

A plugin is a module, a class (instantiated once, without arguments) or an object,
named by an entry point of the ``headless_meeting_bot`` group, whose functions marked
with :data:`hookimpl` implement hooks of :mod:`appliance.plugins.hookspecs`. It may
declare options as ``hmb_options``, a mapping of option names to default values::

    from appliance.plugins import hookimpl

    class Counter:
        hmb_options = {"every": 100}

        @hookimpl
        def on_audio_frame(self, meeting, frame):
            ...

Built-in plugins (``plugins/`` of this project) are registered the same way.
"""

from __future__ import annotations

import pluggy

from appliance.drivers.base import AudioType
from appliance.plugins.hookspecs import PROJECT_NAME
from appliance.plugins.types import (
    AudioFrame,
    MeetingInfo,
    OptionValue,
    PluginContext,
    ShareFrame,
)

ENTRY_POINT_GROUP = PROJECT_NAME

hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

__all__ = [
    "ENTRY_POINT_GROUP",
    "PROJECT_NAME",
    "AudioFrame",
    "AudioType",
    "MeetingInfo",
    "OptionValue",
    "PluginContext",
    "ShareFrame",
    "hookimpl",
]
