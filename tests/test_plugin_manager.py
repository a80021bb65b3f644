"""The plugin manager in-process: validation, configuration, queueing, drops, errors,
shutdown. Plugins here are plain objects handed to the manager; the manager is fed
as the meeting registry feeds it, on the Trio loop. Waiting is on events the plugins
set, not on sleeps."""

from __future__ import annotations

import importlib.metadata
import logging
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import trio

from appliance.bus.audio_bus import MeetingAudio
from appliance.config import ConfigError, Settings
from appliance.drivers.base import AudioType
from appliance.errors import ApplianceError, InvalidRequest
from appliance.plugins import hookimpl
from appliance.plugins.manager import PluginManager
from appliance.plugins.types import audio_frame, share_frame
from appliance.protocol import codec
from appliance.status import MeetingStatus
from appliance.supervisor.meetings import Meeting, parse_join_request

MEETING = "123456789"


class Probe:
    """Records every hook call; can hold frames back, or raise for the first ones."""

    hmb_options = {"label": "plain", "rate": 1.0, "count": 2, "loud": False}

    def __init__(self, fail_first: int = 0, frame_delay: float = 0.0) -> None:
        self.calls: list[tuple] = []
        self.fail_first = fail_first
        self.frame_delay = frame_delay
        self.release = threading.Event()
        self.release.set()
        self.changed = threading.Condition()
        self.threads: set[str] = set()

    def _note(self, *call) -> None:
        with self.changed:
            self.calls.append(call)
            self.threads.add(threading.current_thread().name)
            self.changed.notify_all()

    def wait_for(self, predicate, timeout: float = 10.0) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: predicate(self.calls), timeout)

    @hookimpl
    def on_plugin_start(self, context):
        self._note("start", dict(context.options))

    @hookimpl
    def on_meeting_started(self, meeting):
        self._note("started", meeting.meeting_id, dict(meeting.options))

    @hookimpl
    def on_meeting_status(self, meeting, status, error_code):
        self._note("status", str(status), error_code)

    @hookimpl
    def on_participant_joined(self, meeting, user_id, name):
        self._note("joined", user_id, name)

    @hookimpl
    def on_share_started(self, meeting, user_id):
        self._note("share", user_id)

    @hookimpl
    def on_audio_frame(self, frame):
        self.release.wait()
        if self.frame_delay:
            time.sleep(self.frame_delay)
        if frame.capture_ns < self.fail_first:
            raise RuntimeError(f"bad frame {frame.capture_ns}")
        self._note("audio", frame.capture_ns)

    @hookimpl
    def on_share_frame(self, frame):
        self._note("picture", frame.width, frame.height)

    @hookimpl
    def on_meeting_finished(self, meeting):
        self._note("finished", meeting.meeting_id)

    @hookimpl
    def on_plugin_stop(self):
        self._note("stop")


def settings_for(tmp_path: Path, **fields) -> Settings:
    fields.setdefault("plugins", ("probe",))
    return Settings(data_dir=tmp_path, **fields)


def make_meeting(
    number: int = 1, plugins: dict | None = None, meeting_id: str = MEETING
) -> Meeting:
    body: dict = {"meeting_id": meeting_id}
    if plugins is not None:
        body["plugins"] = plugins
    return Meeting(
        request=parse_join_request(body, "sim"),
        audio=MeetingAudio(meeting_id, window=0.1, heartbeat_interval=10),
        number=number,
    )


def audio(k: int) -> codec.Audio:
    return codec.Audio(AudioType.MIXED, 0, k, bytes(640))


def kinds(calls) -> list[str]:
    return [call[0] for call in calls]


async def wait(probe: Probe, predicate) -> None:
    assert await trio.to_thread.run_sync(probe.wait_for, predicate)


# -- loading and validation -----------------------------------------------------------


class Misspelled:
    @hookimpl
    def on_audio_frme(self, frame):
        pass


class ExtraArgument:
    @hookimpl
    def on_audio_frame(self, frame, volume):
        pass


class Asynchronous:
    @hookimpl
    async def on_audio_frame(self, frame):
        pass


class Unmarked:
    def on_audio_frame(self, frame):
        pass


class BadOptions:
    hmb_options = {"when": [1, 2]}

    @hookimpl
    def on_audio_frame(self, frame):
        pass


@pytest.mark.parametrize(
    ("plugin", "message"),
    [
        (Misspelled(), "on_audio_frme"),
        (ExtraArgument(), "volume"),
        (Asynchronous(), "not async"),
        (Unmarked(), "implements no hook"),
        (BadOptions(), "option 'when'"),
    ],
)
def test_plugins_are_validated_when_registered(tmp_path, plugin, message):
    settings = settings_for(tmp_path, plugins=())
    manager = PluginManager.load(settings, entry_points=[], objects={"bad": plugin})

    (listed,) = manager.describe()
    assert listed["state"] == "failed"
    assert message in listed["error"]
    assert manager.plugin("bad") is None

    # Asked for by name, a failed plugin stops the appliance from starting.
    with pytest.raises(ConfigError, match=message):
        PluginManager.load(
            settings_for(tmp_path, plugins=("bad",)),
            entry_points=[],
            objects={"bad": plugin},
        )


def test_hmb_plugins_must_name_installed_plugins(tmp_path):
    with pytest.raises(ConfigError, match="'nope', which is not installed"):
        PluginManager.load(
            settings_for(tmp_path, plugins=("nope",)),
            entry_points=[],
            objects={"probe": Probe()},
        )


def test_options_come_from_the_environment(tmp_path):
    env = {
        "HMB_PLUGINS": "probe",
        "HMB_PLUGIN_PROBE_LABEL": "loud and clear",
        "HMB_PLUGIN_PROBE_RATE": "2.5",
        "HMB_PLUGIN_PROBE_COUNT": "7",
        "HMB_PLUGIN_PROBE_LOUD": "yes",
        "HMB_PLUGIN_PROBE_TWO_X": "1",
    }
    settings = Settings.from_env({**env, "HMB_DATA_DIR": str(tmp_path)})
    manager = PluginManager.load(
        settings,
        entry_points=[],
        objects={"probe": Probe(), "probe_two": ExtraOption()},
    )
    by_name = {p["name"]: p for p in manager.describe()}
    assert by_name["probe"]["options"] == {
        "label": "loud and clear",
        "rate": 2.5,
        "count": 7,
        "loud": True,
    }
    assert by_name["probe"]["enabled"] is True
    # The variable belongs to the plugin with the longer matching name.
    assert by_name["probe_two"]["options"] == {"x": 1, "api_token": "***"}
    assert by_name["probe_two"]["enabled"] is False


class ExtraOption:
    hmb_options = {"x": 0, "api_token": "s3cret"}

    @hookimpl
    def on_audio_frame(self, frame):
        pass


def test_credentials_are_not_listed(tmp_path):
    manager = PluginManager.load(
        settings_for(tmp_path, plugins=()),
        entry_points=[],
        objects={"p": ExtraOption()},
    )
    assert manager.describe()[0]["options"] == {"x": 0, "api_token": "***"}


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("HMB_PLUGIN_PROBE_NOPE", "1", "has no option 'nope'"),
        ("HMB_PLUGIN_PROBE_COUNT", "many", "must be a int"),
        ("HMB_PLUGIN_PROBE_LOUD", "perhaps", "must be a bool"),
        ("HMB_PLUGIN_PROBE_ENABLED", "1", "HMB_PLUGINS"),
    ],
)
def test_bad_environment_options_stop_the_start(tmp_path, variable, value, message):
    settings = Settings.from_env({variable: value, "HMB_DATA_DIR": str(tmp_path)})
    with pytest.raises(ConfigError, match=message):
        PluginManager.load(settings, entry_points=[], objects={"probe": Probe()})


@pytest.mark.parametrize(
    ("plugins", "message"),
    [
        ({"nope": {}}, "no plugin 'nope'"),
        ({"probe": {"enabled": "no"}}, "plugins.probe.enabled must be true or false"),
        ({"probe": {"volume": 3}}, "plugins.probe: no option 'volume'"),
        ({"probe": {"count": 1.5}}, "plugins.probe.count must be a int"),
        ({"probe": {"rate": True}}, "plugins.probe.rate must be a float"),
    ],
)
def test_join_request_plugin_settings_are_checked(tmp_path, plugins, message):
    manager = PluginManager.load(
        settings_for(tmp_path), entry_points=[], objects={"probe": Probe()}
    )
    request = parse_join_request({"meeting_id": MEETING, "plugins": plugins}, "sim")
    with pytest.raises(InvalidRequest, match=message):
        manager.check_request(request)


@pytest.mark.parametrize("plugins", [[], "recorder", {"recorder": False}])
def test_join_request_plugins_must_be_an_object_of_objects(plugins):
    with pytest.raises(ApplianceError, match="plugins must map plugin names"):
        parse_join_request({"meeting_id": MEETING, "plugins": plugins}, "sim")


# -- running --------------------------------------------------------------------------


async def test_events_reach_the_plugin_in_order_on_its_own_thread(tmp_path):
    probe = Probe()
    manager = PluginManager.load(
        settings_for(tmp_path), entry_points=[], objects={"probe": probe}
    )
    meeting = make_meeting(plugins={"probe": {"label": "this meeting"}})
    async with trio.open_nursery() as nursery:
        await nursery.start(manager.run)
        meeting.status = MeetingStatus.INMEETING
        manager.meeting_status(meeting)
        manager.participant(meeting, 16778240, "Alice", True)
        for k in range(3):
            manager.audio_frame(meeting, audio(k))
        manager.share_state(meeting, 16778240, True)
        manager.share_frame(meeting, codec.ShareFrame(16778240, 9, 32, 16, bytes(768)))
        meeting.status = MeetingStatus.ENDED
        manager.meeting_status(meeting)
        # A frame after the final status is not delivered.
        manager.audio_frame(meeting, audio(99))
        await manager.aclose()
        nursery.cancel_scope.cancel()

    assert probe.calls == [
        ("start", {"label": "plain", "rate": 1.0, "count": 2, "loud": False}),
        (
            "started",
            MEETING,
            {"label": "this meeting", "rate": 1.0, "count": 2, "loud": False},
        ),
        ("status", "MEETING_STATUS_INMEETING", None),
        ("joined", 16778240, "Alice"),
        ("audio", 0),
        ("audio", 1),
        ("audio", 2),
        ("share", 16778240),
        ("picture", 32, 16),
        ("status", "MEETING_STATUS_ENDED", None),
        ("finished", MEETING),
        ("stop",),
    ]
    assert probe.threads == {"hmb-plugin-probe"}
    stats = manager.meeting_stats(meeting)
    assert stats["plugins"]["probe"] == {
        "frames_delivered": 4,
        "dropped_frames": 0,
        "errors": 0,
        "pending": 0,
    }


async def test_a_plugin_that_is_behind_drops_its_own_frames(tmp_path, caplog):
    held, free = Probe(), Probe()
    held.release.clear()
    manager = PluginManager.load(
        settings_for(tmp_path, plugins=("all",), plugin_audio_queue=25),
        entry_points=[],
        objects={"held": held, "free": free},
    )
    second_plugins = {"held": {}, "free": {"enabled": False}}
    first = make_meeting(1)
    second = make_meeting(2, plugins=second_plugins, meeting_id="987654321")
    async with trio.open_nursery() as nursery:
        await nursery.start(manager.run)
        offered = 0.0
        for batch in (range(20), range(20, 40)):
            before = time.perf_counter()
            for k in batch:
                manager.audio_frame(first, audio(k))
            offered = max(offered, time.perf_counter() - before)
            # The other plugin keeps up with every batch.
            await wait(free, lambda calls, k=k: ("audio", k) in calls)
        # The budget is per meeting: another meeting still gets its 25 in.
        for k in range(100, 127):
            manager.audio_frame(second, audio(k))
        manager.participant(first, 7, "Late", True)
        stats = manager.meeting_stats(first)["plugins"]
        assert stats["held"]["dropped_frames"] == 15
        # 25 frames and the join; the start too, unless it was delivered already.
        assert stats["held"]["pending"] in (26, 27)
        assert manager.meeting_stats(second)["plugins"]["held"]["dropped_frames"] == 2
        assert stats["free"]["dropped_frames"] == 0

        held.release.set()
        await wait(held, lambda calls: ("joined", 7, "Late") in calls)
        await wait(free, lambda calls: ("joined", 7, "Late") in calls)
        await manager.aclose()
        nursery.cancel_scope.cancel()

    # Exactly the first 25 of each meeting, in order; the join was not dropped.
    frames = [c[1] for c in held.calls if c[0] == "audio"]
    assert [f for f in frames if f < 100] == list(range(25))
    assert [f for f in frames if f >= 100] == list(range(100, 125))
    assert [c[1] for c in free.calls if c[0] == "audio"][:40] == list(range(40))
    # Offering 20 frames never waited for the held plugin.
    assert offered < 0.05
    counters = {p["name"]: p["counters"] for p in manager.describe()}
    assert counters["held"]["dropped_frames"] == 17
    # One burst of drops per meeting, one warning each.
    behind = [r for r in caplog.records if "plugin is behind" in r.getMessage()]
    assert [r.getMessage().split()[-3:-1] for r in behind] == [
        ["plugin=held", "meeting_id=123456789"],
        ["plugin=held", "meeting_id=987654321"],
    ]
    assert counters["held"]["frames_delivered"] == 50


async def test_errors_are_counted_and_logged_once_per_burst(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="appliance.plugins")
    probe = Probe(fail_first=50)
    manager = PluginManager.load(
        settings_for(tmp_path), entry_points=[], objects={"probe": probe}
    )
    meeting = make_meeting()
    async with trio.open_nursery() as nursery:
        await nursery.start(manager.run)
        for k in range(60):
            manager.audio_frame(meeting, audio(k))
        await wait(probe, lambda calls: ("audio", 59) in calls)
        stats = manager.meeting_stats(meeting)
        await manager.aclose()
        nursery.cancel_scope.cancel()

    assert stats["plugins"]["probe"]["errors"] == 50
    assert stats["plugins"]["probe"]["frames_delivered"] == 10
    raised = [r for r in caplog.records if "plugin raised" in r.getMessage()]
    assert len(raised) == 1
    assert raised[0].exc_info is not None
    assert "meeting_id=123456789" in raised[0].getMessage()
    recovered = [r for r in caplog.records if "plugin recovered" in r.getMessage()]
    assert len(recovered) == 1
    assert "errors_in_burst=50" in recovered[0].getMessage()


def plugin_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("hmb-plugin-")]


async def test_shutdown_drains_finalises_and_leaves_no_thread(tmp_path):
    probe = Probe(frame_delay=0.005)
    manager = PluginManager.load(
        settings_for(tmp_path), entry_points=[], objects={"probe": probe}
    )
    meeting = make_meeting()
    async with trio.open_nursery() as nursery:
        await nursery.start(manager.run)
        assert [t.name for t in plugin_threads()] == ["hmb-plugin-probe"]
        for k in range(40):
            manager.audio_frame(meeting, audio(k))
        # The meeting never reached a final status: shutdown finishes it.
        await manager.aclose()
        nursery.cancel_scope.cancel()

    assert [c[1] for c in probe.calls if c[0] == "audio"] == list(range(40))
    assert kinds(probe.calls)[-2:] == ["finished", "stop"]
    assert plugin_threads() == []
    assert manager.describe()[0]["state"] == "stopped"


async def test_the_drain_timeout_drops_frames_but_still_finalises(tmp_path):
    probe = Probe(frame_delay=0.2)
    manager = PluginManager.load(
        settings_for(tmp_path, plugin_drain_timeout=0.3),
        entry_points=[],
        objects={"probe": probe},
    )
    meeting = make_meeting()
    async with trio.open_nursery() as nursery:
        await nursery.start(manager.run)
        for k in range(50):
            manager.audio_frame(meeting, audio(k))
        started = time.monotonic()
        await manager.aclose()
        took = time.monotonic() - started
        nursery.cancel_scope.cancel()

    delivered = [c for c in probe.calls if c[0] == "audio"]
    assert 1 <= len(delivered) <= 4
    assert kinds(probe.calls)[-2:] == ["finished", "stop"]
    assert took < 1.5
    assert plugin_threads() == []
    counters = manager.describe()[0]["counters"]
    assert counters["dropped_frames"] == 50 - len(delivered)


async def test_per_meeting_enable_and_disable(tmp_path):
    on, off = Probe(), Probe()
    manager = PluginManager.load(
        settings_for(tmp_path, plugins=("on",)),
        entry_points=[],
        objects={"on": on, "off": off},
    )
    swapped = make_meeting(plugins={"on": {"enabled": False}, "off": {"enabled": True}})
    async with trio.open_nursery() as nursery:
        await nursery.start(manager.run)
        manager.audio_frame(swapped, audio(1))
        await manager.aclose()
        nursery.cancel_scope.cancel()

    assert "audio" not in kinds(on.calls)
    assert ("audio", 1) in off.calls
    assert set(manager.meeting_stats(swapped)["plugins"]) == {"off"}


class FailsToStart(Probe):
    @hookimpl
    def on_plugin_start(self, context):
        raise OSError("no disk")


async def test_a_plugin_that_fails_to_start_gets_nothing(tmp_path, caplog):
    probe = FailsToStart()
    manager = PluginManager.load(
        settings_for(tmp_path), entry_points=[], objects={"probe": probe}
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(manager.run)
        await manager.aclose()
        nursery.cancel_scope.cancel()
    assert probe.calls == []
    assert manager.describe()[0]["state"] == "failed"
    assert manager.health() == {"probe": "failed"}


# -- what plugins are handed ----------------------------------------------------------


def test_audio_frames_are_read_only_views_without_a_copy():
    received = bytearray(np.arange(320, dtype="<i2").tobytes())
    event = codec.Audio(1, 42, 7, memoryview(received))
    frame = audio_frame(MEETING, event)

    assert frame.audio_type is AudioType.ONE_WAY
    assert (frame.user_id, frame.capture_ns, frame.meeting_id) == (42, 7, MEETING)
    assert frame.pcm.dtype == np.int16 and frame.pcm.shape == (320,)
    assert not frame.pcm.flags.writeable
    with pytest.raises(ValueError):
        frame.pcm[0] = 1
    received[0:2] = b"\x39\x05"  # the view shows the very bytes that arrived
    assert frame.pcm[0] == 0x0539


def test_share_frames_have_plane_views():
    width, height = 8, 4
    i420 = bytes(range(32)) + bytes([100] * 8) + bytes([200] * 8)
    frame = share_frame(MEETING, codec.ShareFrame(5, 6, width, height, i420))

    assert frame.y.shape == (4, 8) and frame.u.shape == frame.v.shape == (2, 4)
    assert frame.y[1, 0] == 8
    assert (frame.u == 100).all() and (frame.v == 200).all()
    assert not any(p.flags.writeable for p in (frame.y, frame.u, frame.v))
    assert bytes(frame.i420) == i420


def test_a_variable_for_no_plugin_is_reported(tmp_path, caplog):
    env = {"HMB_PLUGIN_PROBEE_LABEL": "typo", "HMB_PLUGIN_PATH": "/opt/plugins"}
    settings = Settings.from_env({**env, "HMB_DATA_DIR": str(tmp_path)})
    PluginManager.load(settings, entry_points=[], objects={"probe": Probe()})
    warned = [r.getMessage() for r in caplog.records if "no plugin" in r.getMessage()]
    assert warned == ["no plugin for the variable variable=HMB_PLUGIN_PROBEE_LABEL"]


def test_entry_points_load_classes_and_keep_the_first_of_a_name(tmp_path):
    group = "headless_meeting_bot"
    entry_points = [
        importlib.metadata.EntryPoint("dup", f"{__name__}:Probe", group),
        importlib.metadata.EntryPoint("dup", f"{__name__}:ExtraOption", group),
        importlib.metadata.EntryPoint("all", f"{__name__}:Probe", group),
        importlib.metadata.EntryPoint("gone", "no_such_module:Plugin", group),
    ]
    manager = PluginManager.load(
        settings_for(tmp_path, plugins=("dup",)), entry_points=entry_points
    )

    listed = manager.describe()
    assert [(p["name"], p["state"]) for p in listed] == [
        ("dup", "loaded"),
        ("dup", "failed"),
        ("all", "failed"),
        ("gone", "failed"),
    ]
    assert isinstance(manager.plugin("dup"), Probe)
    assert listed[0]["enabled"] is True
    assert listed[1]["error"] == f"the name is taken by {__name__}:Probe"
    assert "not 'all'" in listed[2]["error"]
    assert "ModuleNotFoundError" in listed[3]["error"]
