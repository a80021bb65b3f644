"""The plugin manager: finds plugins, gives each a runner, and tells them of meetings.

Theory of operation
-------------------
Loading happens once, at start-up, before anything is served. Every entry point of the
``headless_meeting_bot`` group is loaded (a module is registered as it is, a class is
instantiated once without arguments, any other object is registered as it is) and
validated: its name, its hook implementations against :mod:`.hookspecs` (pluggy), its
declared options. A plugin that fails is listed as failed and the others go on; but a
plugin that ``HMB_PLUGINS`` asks for must load, or the appliance does not start.

Each plugin is registered with a pluggy manager of its own, so a hook call reaches that
plugin alone, on its own runner thread (:mod:`.runner`).

The manager is the meeting registry's observer: the registry calls it on the event
loop for every status, participant, share event and frame. The first event of a
meeting run opens the run: one :class:`~.runner.Tap` per plugin enabled for it (by
``HMB_PLUGINS``, then the join request's ``plugins`` field), and
``on_meeting_started``. Frames are offered to the plugins implementing their hook;
lifecycle events are sent. The final status (or removal of a run that never reached
one, or shutdown) sends ``on_meeting_finished``; frames of a finished run are not
delivered. Everything here is O(plugins) per event and never waits.

Queued frames are views of the bytes received from the worker. They stay valid while
queued because the protocol decoder's caller never modifies a chunk it fed (see
:class:`appliance.protocol.codec.Decoder`).
"""

from __future__ import annotations

import importlib.metadata
import inspect
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import pluggy
import trio

from appliance.config import ConfigError, Settings
from appliance.drivers.base import JoinRequest
from appliance.errors import InvalidRequest
from appliance.plugins import hookspecs
from appliance.plugins.options import (
    NAME,
    OptionsError,
    declared_options,
    env_options,
    meeting_overrides,
    shown,
)
from appliance.plugins.runner import PluginRunner, Tap
from appliance.plugins.types import MeetingInfo, OptionValue, PluginContext
from appliance.protocol import codec
from appliance.status import MeetingStatus

if TYPE_CHECKING:
    from appliance.supervisor.meetings import Meeting

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = hookspecs.PROJECT_NAME
BUILTIN_PACKAGE = "plugins."
# Variables that share the prefix of plugin options but are not options.
NOT_OPTIONS = {"HMB_PLUGIN_PATH"}
# After the drain timeout, how long runners get for lifecycle events and
# on_plugin_stop (files being closed) before their threads are abandoned.
FINALISE_TIMEOUT = 5.0


@dataclass(eq=False)
class LoadedPlugin:
    """A plugin found at start-up: loaded and running, or failed with ``error``."""

    name: str
    source: str
    distribution: str | None = None
    obj: object | None = None
    defaults: dict[str, OptionValue] = field(default_factory=dict)
    options: dict[str, OptionValue] = field(default_factory=dict)
    enabled: bool = False
    runner: PluginRunner | None = None
    error: str | None = None

    @property
    def builtin(self) -> bool:
        return self.source.startswith(BUILTIN_PACKAGE)

    @property
    def hooks(self) -> list[str]:
        if self.runner is None:
            return []
        return [name for name in _HOOK_NAMES if self.runner.implements(name)]


_HOOK_NAMES = [
    name
    for name, value in vars(hookspecs).items()
    if name.startswith("on_") and callable(value)
]


@dataclass(eq=False)
class _Run:
    """One meeting run and the taps of the plugins enabled for it."""

    meeting_id: str
    taps: dict[str, tuple[PluginRunner, Tap]]
    audio: list[tuple[PluginRunner, Tap]]
    share: list[tuple[PluginRunner, Tap]]
    finished: bool = False

    def send(self, hook_name: str, **kwargs: Any) -> None:
        for runner, tap in self.taps.values():
            runner.send(tap, hook_name, **kwargs)


def validate(name: str, obj: object) -> tuple[dict[str, Any], dict[str, OptionValue]]:
    """Register ``obj`` with a pluggy manager of its own and check it.

    Returns its hook callers by name and its declared options; raises ``ValueError``
    (pluggy's :class:`~pluggy.PluginValidationError` among them) naming the problem.
    """
    if not NAME.fullmatch(name) or name == "all":
        raise ValueError(
            f"plugin name {name!r} must be lower-case letters, digits and "
            "underscores, and not 'all'"
        )
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    pm.register(obj, name=name)
    pm.check_pending()
    callers: dict[str, Any] = {}
    for caller in pm.get_hookcallers(obj) or []:
        for impl in caller.get_hookimpls():
            if impl.hookwrapper or impl.wrapper:
                raise ValueError(f"{caller.name}: hook wrappers are not supported")
            if inspect.iscoroutinefunction(impl.function):
                raise ValueError(f"{caller.name}: must be a plain function, not async")
        callers[caller.name] = caller
    if not callers:
        raise ValueError("implements no hook (is each hook marked with @hookimpl?)")
    try:
        options = declared_options(obj)
    except OptionsError as exc:
        raise ValueError(str(exc)) from None
    return callers, options


def discover() -> list[importlib.metadata.EntryPoint]:
    """Every entry point of the ``headless_meeting_bot`` group, by name.

    Every distribution on the path is read, not only the first of each name, because
    a stale ``*.egg-info`` left in a source checkout (the current folder is on the
    path) would otherwise hide the installed metadata.
    """
    found: dict[tuple[str, str], importlib.metadata.EntryPoint] = {}
    for dist in importlib.metadata.distributions():
        for ep in dist.entry_points:
            if ep.group == ENTRY_POINT_GROUP:
                found.setdefault((ep.name, ep.value), ep)
    return sorted(found.values(), key=lambda e: e.name)


class PluginManager:
    """Every plugin of this appliance, and the observer that feeds them."""

    def __init__(self, settings: Settings, plugins: list[LoadedPlugin]) -> None:
        self.settings = settings
        self.plugins = plugins
        # A name taken twice belongs to the first plugin that had it.
        self._by_name: dict[str, LoadedPlugin] = {}
        for plugin in plugins:
            self._by_name.setdefault(plugin.name, plugin)
        self._runs: dict[int, _Run] = {}
        self._started = False
        self._closed = False

    # -- loading --------------------------------------------------------------------

    @classmethod
    def load(
        cls,
        settings: Settings,
        *,
        entry_points: Iterable[importlib.metadata.EntryPoint] | None = None,
        objects: Mapping[str, object] | None = None,
    ) -> PluginManager:
        """Load the installed plugins (or ``entry_points``, plus ``objects`` by name,
        for tests) and configure them from ``settings``; raises :class:`ConfigError`
        when the configuration names a plugin that is missing or failed."""
        found: list[tuple[str, str, str | None, Any]] = []
        for ep in discover() if entry_points is None else entry_points:
            dist = ep.dist
            label = f"{dist.name} {dist.version}" if dist is not None else None
            found.append((ep.name, ep.value, label, ep))
        for name, obj in (objects or {}).items():
            found.append((name, f"{type(obj).__module__}:{name}", None, obj))

        plugins: list[LoadedPlugin] = []
        seen: dict[str, LoadedPlugin] = {}
        for name, source, label, target in found:
            plugin = LoadedPlugin(name=name, source=source, distribution=label)
            plugins.append(plugin)
            if name in seen:
                plugin.error = f"the name is taken by {seen[name].source}"
                log.error("plugin not loaded plugin=%s error=%s", name, plugin.error)
                continue
            seen[name] = plugin
            try:
                plugin.obj = _instantiate(target)
                callers, plugin.defaults = validate(name, plugin.obj)
            except Exception as exc:
                plugin.error = f"{type(exc).__name__}: {exc}"
                log.error("plugin not loaded plugin=%s error=%s", name, plugin.error)
                continue
            plugin.runner = PluginRunner(
                name,
                callers,
                PluginContext(name, settings.data_dir, MappingProxyType({})),
                audio_budget=settings.plugin_audio_queue,
                share_budget=settings.plugin_share_queue,
            )
        manager = cls(settings, plugins)
        manager._configure()
        return manager

    def _configure(self) -> None:
        wanted = set(self.settings.plugins)
        every = "all" in wanted
        wanted.discard("all")
        for name in sorted(wanted):
            plugin = self._by_name.get(name)
            if plugin is None:
                known = ", ".join(sorted(self._by_name)) or "none"
                raise ConfigError(
                    f"HMB_PLUGINS names {name!r}, which is not installed "
                    f"(installed: {known})"
                )
            if plugin.error is not None:
                raise ConfigError(f"plugin {name} failed to load: {plugin.error}")
        names = list(self._by_name)
        prefixes = tuple(f"HMB_PLUGIN_{name.upper()}_" for name in names)
        for variable, _ in self.settings.plugin_env:
            if variable not in NOT_OPTIONS and not variable.startswith(prefixes):
                # Probably a typo, or a plugin that is not installed here.
                log.warning("no plugin for the variable variable=%s", variable)
        for plugin in self.plugins:
            if plugin.runner is None:
                continue
            plugin.options = env_options(
                plugin.name, plugin.defaults, self.settings.plugin_env, names
            )
            plugin.enabled = every or plugin.name in wanted
            plugin.runner.context = PluginContext(
                plugin.name, self.settings.data_dir, MappingProxyType(plugin.options)
            )
            log.info(
                "plugin loaded plugin=%s source=%s enabled=%s",
                plugin.name,
                plugin.source,
                plugin.enabled,
            )

    def plugin(self, name: str) -> object | None:
        """The object of a loaded plugin (``None`` if it is not loaded)."""
        plugin = self._by_name.get(name)
        return plugin.obj if plugin is not None and plugin.error is None else None

    # -- running --------------------------------------------------------------------

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Start every runner; when cancelled, stop them as :meth:`aclose` does."""
        token = trio.lowlevel.current_trio_token()
        for plugin in self.plugins:
            if plugin.runner is not None:
                plugin.runner.start(token)
        self._started = True
        try:
            task_status.started()
            await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True):
                await self.aclose()

    async def aclose(self) -> None:
        """Finish open runs, let runners drain (up to ``HMB_PLUGINS_DRAIN_TIMEOUT_S``),
        then ``on_plugin_stop``; threads still busy after that are abandoned."""
        if self._closed or not self._started:
            self._closed = True
            return
        self._closed = True
        for run in self._runs.values():
            self._finish(run)
        runners = [p.runner for p in self.plugins if p.runner is not None]
        for runner in runners:
            runner.stop()
        with trio.move_on_after(self.settings.plugin_drain_timeout):
            for runner in runners:
                await runner.done.wait()
        late = [r for r in runners if not r.done.is_set()]
        if late:
            log.warning(
                "plugins still busy after the drain timeout; dropping their queued "
                "frames plugins=%s",
                ",".join(r.name for r in late),
            )
            for runner in late:
                runner.discard_frames()
            with trio.move_on_after(FINALISE_TIMEOUT):
                for runner in late:
                    await runner.done.wait()
        for runner in runners:
            thread = runner.thread
            if not runner.done.is_set() or thread is None:
                log.error(
                    "plugin did not stop; its thread is abandoned plugin=%s",
                    runner.name,
                )
                continue
            # ``done`` is set from the thread's last lines; the join is immediate.
            await trio.to_thread.run_sync(thread.join, 1.0)
        log.info("plugins stopped count=%d", len(runners))

    # -- the meeting registry's observer (on the event loop) -------------------------

    def check_request(self, request: JoinRequest) -> None:
        """Refuse a join request whose ``plugins`` field cannot be honoured here."""
        self._resolve(request)

    def meeting_status(self, meeting: Meeting) -> None:
        run = self._run_of(meeting)
        if run is None or run.finished:
            return
        error = meeting.error
        run.send(
            "on_meeting_status",
            status=MeetingStatus(meeting.status),
            error_code=error.code.name if error is not None else None,
            error_message=error.message if error is not None else None,
        )
        if meeting.status.is_final:
            self._finish(run)

    def participant(
        self, meeting: Meeting, user_id: int, name: str, joined: bool
    ) -> None:
        run = self._run_of(meeting)
        if run is not None and not run.finished:
            hook = "on_participant_joined" if joined else "on_participant_left"
            run.send(hook, user_id=user_id, name=name)

    def audio_frame(self, meeting: Meeting, frame: codec.Audio) -> None:
        run = self._runs.get(meeting.number) or self._run_of(meeting)
        if run is not None and not run.finished:
            for runner, tap in run.audio:
                runner.offer_audio(tap, frame)

    def share_state(self, meeting: Meeting, user_id: int, started: bool) -> None:
        run = self._run_of(meeting)
        if run is not None and not run.finished:
            hook = "on_share_started" if started else "on_share_stopped"
            run.send(hook, user_id=user_id)

    def share_frame(self, meeting: Meeting, frame: codec.ShareFrame) -> None:
        run = self._runs.get(meeting.number) or self._run_of(meeting)
        if run is not None and not run.finished:
            for runner, tap in run.share:
                runner.offer_share(tap, frame)

    def meeting_removed(self, meeting: Meeting) -> None:
        run = self._runs.pop(meeting.number, None)
        if run is not None:
            self._finish(run)

    # -- what the REST API shows ----------------------------------------------------

    def meeting_stats(self, meeting: Meeting) -> dict[str, Any]:
        """Per-plugin counters of one meeting run, for its ``stats``."""
        run = self._runs.get(meeting.number)
        per_plugin = {}
        if run is not None:
            per_plugin = {name: tap.counters() for name, (_, tap) in run.taps.items()}
        return {
            "plugins": per_plugin,
            "plugin_dropped_frames": sum(
                c["dropped_frames"] for c in per_plugin.values()
            ),
        }

    def describe(self) -> list[dict[str, Any]]:
        """Every plugin found, its state, options and counters (GET /api/plugins)."""
        listing = []
        for plugin in self.plugins:
            runner = plugin.runner
            entry: dict[str, Any] = {
                "name": plugin.name,
                "source": plugin.source,
                "distribution": plugin.distribution,
                "builtin": plugin.builtin,
                "state": runner.state if runner is not None else "failed",
                "enabled": plugin.enabled,
                "error": plugin.error or (runner.error if runner else None),
                "hooks": plugin.hooks,
                "options": shown(plugin.options or plugin.defaults),
            }
            if runner is not None:
                active = sum(
                    1
                    for run in self._runs.values()
                    if plugin.name in run.taps and not run.finished
                )
                entry["queue"] = {
                    "audio_frames": runner.audio_budget,
                    "share_frames": runner.share_budget,
                }
                entry["counters"] = {
                    "frames_delivered": runner.delivered,
                    "dropped_frames": runner.dropped + runner.discarded,
                    "errors": runner.errors,
                    "active_meetings": active,
                }
            listing.append(entry)
        return listing

    def health(self) -> dict[str, str]:
        """Each plugin's state, for ``/health``."""
        return {
            p.name: p.runner.state if p.runner is not None else "failed"
            for p in self.plugins
        }

    # -- internals --------------------------------------------------------------------

    def _resolve(
        self, request: JoinRequest
    ) -> list[tuple[LoadedPlugin, dict[str, OptionValue]]]:
        """The plugins enabled for a join request, each with its options."""
        requested = request.options.get("plugins") or {}
        for name in requested:
            if name not in self._by_name:
                known = ", ".join(sorted(self._by_name)) or "none"
                raise InvalidRequest(
                    f"plugins: no plugin {name!r} on this appliance (plugins: {known})"
                )
        chosen = []
        for plugin in self.plugins:
            overrides, enabled = meeting_overrides(
                plugin.name, plugin.defaults, requested.get(plugin.name, {})
            )
            if enabled is None:
                enabled = plugin.enabled
            if enabled and (plugin.runner is None or plugin.error is not None):
                raise InvalidRequest(
                    f"plugins: {plugin.name} is not usable: {plugin.error}"
                )
            if enabled:
                chosen.append((plugin, {**plugin.options, **overrides}))
        return chosen

    def _run_of(self, meeting: Meeting) -> _Run | None:
        """The meeting's run; opened (and announced to plugins) on its first event."""
        run = self._runs.get(meeting.number)
        if run is not None or self._closed:
            return run
        try:
            chosen = self._resolve(meeting.request)
        except InvalidRequest as exc:
            # Checked at POST already; only a plugin failing since then gets here.
            log.error("plugins not run meeting_id=%s error=%s", meeting.meeting_id, exc)
            chosen = []
        ago = timedelta(seconds=time.monotonic() - meeting.created_monotonic)
        started = datetime.now(UTC) - ago
        run = _Run(meeting.meeting_id, {}, [], [])
        for plugin, options in chosen:
            runner = plugin.runner
            assert runner is not None
            if runner.error is not None:
                continue
            info = MeetingInfo(
                meeting.meeting_id,
                meeting.number,
                meeting.request.display_name,
                started,
                MappingProxyType(options),
            )
            tap = Tap(info)
            run.taps[plugin.name] = (runner, tap)
            if runner.implements("on_audio_frame"):
                run.audio.append((runner, tap))
            if runner.implements("on_share_frame"):
                run.share.append((runner, tap))
        self._runs[meeting.number] = run
        run.send("on_meeting_started")
        log.debug(
            "plugins for meeting meeting_id=%s plugins=%s",
            meeting.meeting_id,
            ",".join(run.taps) or "none",
        )
        return run

    def _finish(self, run: _Run) -> None:
        if not run.finished:
            run.finished = True
            run.send("on_meeting_finished")


def _instantiate(target: Any) -> object:
    obj = target.load() if isinstance(target, importlib.metadata.EntryPoint) else target
    if inspect.isclass(obj):
        obj = obj()
    return obj
