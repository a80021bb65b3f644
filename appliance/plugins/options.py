"""Plugin options: declared by the plugin, set per appliance and per meeting.

A plugin declares its options as ``hmb_options``, a mapping of names to default values
(bool, int, float or str); the default's type is the option's type. Every plugin also
has the option ``enabled``, which is not declared.

Values come from three layers, each overriding the one before:

1. the declared defaults;
2. the environment, ``HMB_PLUGIN_<NAME>_<KEY>``, parsed from text (for example
   ``HMB_PLUGIN_SHARE_CAPTURE_MAX_FPS=2``);
3. the join request, ``"plugins": {"<name>": {"<key>": value}}``, as JSON values.

Names are checked at every layer: an unknown plugin or key, or a value of the wrong
type, is refused with the plugin and key named (a :class:`ConfigError` at start-up, an
``INVALID_REQUEST`` for a join request).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from appliance.config import ConfigError
from appliance.errors import InvalidRequest
from appliance.plugins.types import OptionValue

NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
ENABLED = "enabled"
ENV_PREFIX = "HMB_PLUGIN_"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
# Option values that look like credentials are not shown by GET /api/plugins.
_SECRET = re.compile(
    r"(^|_)(secret|token|password|passwd|key|credentials?)(_|$)", re.IGNORECASE
)


class OptionsError(ValueError):
    """A plugin declares options the appliance cannot use."""


def declared_options(plugin: object) -> dict[str, OptionValue]:
    """The plugin's ``hmb_options``, checked; raises :class:`OptionsError`."""
    raw = getattr(plugin, "hmb_options", None)
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise OptionsError("hmb_options must be a mapping of names to defaults")
    options: dict[str, OptionValue] = {}
    for key, default in raw.items():
        if not isinstance(key, str) or not NAME.fullmatch(key) or key == ENABLED:
            raise OptionsError(
                f"option name {key!r} must be lower-case letters, digits and "
                f"underscores, and not {ENABLED!r}"
            )
        if not isinstance(default, bool | int | float | str):
            raise OptionsError(
                f"option {key!r} must default to a bool, int, float or str, "
                f"not {type(default).__name__}"
            )
        options[key] = default
    return options


def _from_text(default: OptionValue, raw: str) -> OptionValue:
    text = raw.strip()
    if isinstance(default, bool):
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ValueError("expected true or false")
    if isinstance(default, int):
        return int(text)
    if isinstance(default, float):
        return float(text)
    return raw


def env_options(
    name: str,
    defaults: Mapping[str, OptionValue],
    env: Iterable[tuple[str, str]],
    other_names: Iterable[str] = (),
) -> dict[str, OptionValue]:
    """The plugin's appliance-wide options: its defaults, overridden by ``env``.

    ``env`` holds the ``HMB_PLUGIN_*`` variables. A variable belongs to the plugin
    whose upper-cased name is the longest prefix of it, so that plugins named ``share``
    and ``share_capture`` can both be configured.
    """
    options = dict(defaults)
    prefix = f"{ENV_PREFIX}{name.upper()}_"
    longer = [
        f"{ENV_PREFIX}{other.upper()}_"
        for other in other_names
        if len(other) > len(name) and f"{ENV_PREFIX}{other.upper()}_".startswith(prefix)
    ]
    for variable, raw in env:
        if not variable.startswith(prefix) or any(map(variable.startswith, longer)):
            continue
        key = variable[len(prefix) :].lower()
        if key == ENABLED:
            raise ConfigError(f"{variable}: enable plugins with HMB_PLUGINS instead")
        if key not in defaults:
            known = ", ".join(sorted(defaults)) or "none"
            raise ConfigError(
                f"{variable}: plugin {name} has no option {key!r} (options: {known})"
            )
        try:
            options[key] = _from_text(defaults[key], raw)
        except ValueError as exc:
            kind = type(defaults[key]).__name__
            raise ConfigError(f"{variable} must be a {kind}: {exc}") from None
    return options


def _from_json(default: OptionValue, value: Any) -> OptionValue:
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
    elif isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(default, float):
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif isinstance(value, str):
        return value
    raise TypeError(type(default).__name__)


def meeting_overrides(
    name: str, defaults: Mapping[str, OptionValue], overrides: Mapping[str, Any]
) -> tuple[dict[str, OptionValue], bool | None]:
    """Check one plugin's part of a join request's ``plugins`` field.

    Returns the options it sets and ``enabled`` if it says; raises
    :class:`InvalidRequest`.
    """
    options: dict[str, OptionValue] = {}
    enabled: bool | None = None
    for key, value in overrides.items():
        if key == ENABLED:
            if not isinstance(value, bool):
                raise InvalidRequest(f"plugins.{name}.enabled must be true or false")
            enabled = value
            continue
        if key not in defaults:
            known = ", ".join([ENABLED, *sorted(defaults)])
            raise InvalidRequest(
                f"plugins.{name}: no option {key!r} (options: {known})"
            )
        try:
            options[key] = _from_json(defaults[key], value)
        except TypeError as exc:
            raise InvalidRequest(f"plugins.{name}.{key} must be a {exc}") from None
    return options, enabled


def shown(options: Mapping[str, OptionValue]) -> dict[str, OptionValue]:
    """Options as GET /api/plugins shows them: values of credential-like keys hidden."""
    return {
        key: "***" if _SECRET.search(key) and value != "" else value
        for key, value in options.items()
    }
