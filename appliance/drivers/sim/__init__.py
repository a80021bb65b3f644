"""The ``sim`` driver: a simulated Zoom meeting played from a TOML scenario.

:mod:`.scenario` reads and validates scenarios (cheap, safe to call per request);
:mod:`.media` renders their sound, :mod:`.clips` reads WAV files for it and
:mod:`.screen` draws shared screens; :mod:`.driver` plays them in real time.
Importing this package loads only the scenario module; only :mod:`.clips` and
:mod:`.screen` load numpy.
"""

from appliance.drivers.sim.scenario import (
    Scenario,
    builtin_names,
    load_scenario,
    parse_scenario,
)

__all__ = ["Scenario", "builtin_names", "load_scenario", "parse_scenario"]
