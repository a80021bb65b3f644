"""Plugins through a real appliance on the sim driver: the recorder, share capture, a
third-party plugin package found through its entry point, and isolation from plugins
that are slow or raise."""

from __future__ import annotations

import hashlib
import importlib.metadata
import io
import json
import os
import signal
import struct
import subprocess
import sys
import threading
import time
import wave
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.conftest import pid_alive
from tests.test_audio_stream import Recorder, write_clip

MEETING = "5550002222"
ALICE, BOB = 16778240, 16779264
PLUGIN_PKG = Path(__file__).parent / "plugin_pkg"
PROBE_ENTRY_POINTS = {"probe", "sleepy", "faulty"}


@pytest.fixture(scope="session")
def probe_plugin() -> None:
    """Install the test plugin package (tests/plugin_pkg) into this environment, as a
    user installs a third-party plugin, unless it is there already."""
    try:
        dist = importlib.metadata.distribution("hmb-probe-plugin")
        if {ep.name for ep in dist.entry_points} == PROBE_ENTRY_POINTS:
            return
    except importlib.metadata.PackageNotFoundError:
        pass
    # Built in pip's isolated environment: the venv's own setuptools may be too old
    # to build a wheel by itself (it lacks the wheel package before setuptools 70).
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps"]
    subprocess.run([*pip, "-e", str(PLUGIN_PKG)], check=True)
    importlib.invalidate_caches()


def scenario_file(tmp_path: Path, text: str, name: str = "scenario.toml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def wait_plugins_done(appliance, meeting_id: str, timeout: float = 30) -> dict:
    """Wait until the meeting reached its final status and every plugin has handled
    all of it (including on_meeting_finished); return its detail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        detail = appliance.meeting(meeting_id)
        final = detail["status"] in ("MEETING_STATUS_ENDED", "MEETING_STATUS_FAILED")
        plugins = detail["stats"]["plugins"]
        if final and all(p["pending"] == 0 for p in plugins.values()):
            return detail
        time.sleep(0.05)
    raise AssertionError(f"plugins never finished {meeting_id}: {detail}")


def wav_frames(path: Path) -> bytes:
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (
            1,
            2,
            32000,
        )
        return wav.readframes(wav.getnframes())


def two_speakers(tmp_path: Path, ends_at: float = 3.0) -> str:
    write_clip(tmp_path / "alice.wav", 11, 1.37)
    return scenario_file(
        tmp_path,
        f"""
[[participant]]
user_id = {ALICE}
name = "Alice Ång/ström"
audio = {{ file = "alice.wav" }}
amplitude = 1.0
speaks = [[0.0, 1.2], [2.0, 2.5]]

[[participant]]
user_id = {BOB}
name = "Bob"
audio = {{ noise_seed = 5 }}
speaks = [[0.6, 2.2]]

[[share]]
user_id = {BOB}
start = 1.0
stop = 2.0
width = 64
height = 48
fps = 5
with_audio = true
audio = {{ noise_seed = 9 }}

[meeting]
waiting_room_s = 0.5
ends_at = {ends_at}
""",
    )


# -- the recorder -------------------------------------------------------------------


def test_recordings_equal_the_streamed_audio(appliance_factory, tmp_path):
    appliance = appliance_factory(HMB_PLUGINS="recorder")
    scenario = two_speakers(tmp_path)
    assert appliance.post_meeting(MEETING, scenario=scenario).status_code == 202
    client = Recorder(f"{appliance.ws_url}/ws/audio/{MEETING}")
    client.join()
    detail = wait_plugins_done(appliance, MEETING)
    assert detail["stats"]["plugins"]["recorder"]["dropped_frames"] == 0

    (session,) = (appliance.data_dir / "recordings" / MEETING).iterdir()
    files = {
        "mixed.wav": (0, 0),
        f"{ALICE}-Alice_Ång_ström.wav": (1, ALICE),
        f"{BOB}-Bob.wav": (1, BOB),
        f"share-{BOB}-Bob.wav": (2, BOB),
    }
    assert sorted(p.name for p in session.iterdir()) == sorted(files)
    for name, stream in files.items():
        streamed = bytes(client.streams[stream])
        assert streamed, name
        assert wav_frames(session / name) == streamed, name
    assert len(client.streams[(0, 0)]) == 300 * 640

    # The REST API lists and serves them, also once the meeting is removed.
    listing = appliance.http.get(f"/api/meetings/{MEETING}/recordings").json()
    assert sorted(e["file"] for e in listing) == sorted(files)
    mixed = next(e for e in listing if e["file"] == "mixed.wav")
    assert mixed == {
        "name": f"{session.name}/mixed.wav",
        "session": session.name,
        "file": "mixed.wav",
        "bytes": 44 + 300 * 640,
        "duration_s": 3.0,
    }
    assert appliance.http.delete(f"/api/meetings/{MEETING}").status_code == 200
    assert appliance.http.get(f"/api/meetings/{MEETING}").status_code == 404
    listed_after = appliance.http.get(f"/api/meetings/{MEETING}/recordings").json()
    assert listed_after == listing
    for entry in listing:
        response = appliance.http.get(
            f"/api/meetings/{MEETING}/recordings/{entry['name']}"
        )
        assert response.status_code == 200
        assert response.headers["content-type"] == "audio/wav"
        assert response.content == (session / entry["file"]).read_bytes()


def test_recording_requests_that_find_nothing(appliance_factory, tmp_path):
    appliance = appliance_factory(HMB_PLUGINS="recorder")
    base = f"/api/meetings/{MEETING}/recordings"
    cases = [
        (base, 404, "MEETING_NOT_FOUND"),
        ("/api/meetings/not-a-meeting/recordings", 404, "MEETING_NOT_FOUND"),
        (f"{base}/20261203T144306Z/mixed.wav", 404, "RECORDING_NOT_FOUND"),
        (f"{base}/mixed.wav", 400, "INVALID_REQUEST"),
        (f"{base}/20261203T144306Z/..%2F..%2Fsecret.wav", 400, "INVALID_REQUEST"),
        (f"{base}/20261203T144306Z/notes.txt", 400, "INVALID_REQUEST"),
    ]
    for url, status, code in cases:
        response = appliance.http.get(url)
        assert response.status_code == status, url
        assert response.json()["error"]["code"] == code, url

    # A meeting that is here but has recorded nothing yet lists nothing.
    waiting = scenario_file(tmp_path, "[meeting]\nwaiting_room_s = 60\n")
    appliance.post_meeting(MEETING, scenario=waiting)
    appliance.wait_status(MEETING, "MEETING_STATUS_IN_WAITING_ROOM")
    assert appliance.http.get(base).json() == []


def test_kill_9_mid_recording_leaves_playable_wavs(appliance_factory, tmp_path):
    appliance = appliance_factory(HMB_PLUGINS="recorder")
    scenario = scenario_file(
        tmp_path,
        f"""
[[participant]]
user_id = {ALICE}
name = "Alice"
audio = {{ noise_seed = 3 }}
speaks = [[0.0, 600.0]]
""",
    )
    appliance.post_meeting(MEETING, scenario=scenario)
    detail = appliance.wait_status(MEETING, "MEETING_STATUS_INMEETING")
    joined = time.monotonic()
    time.sleep(2.5)

    appliance.process.send_signal(signal.SIGKILL)
    recorded_for = time.monotonic() - joined
    appliance.process.wait(10)

    (session,) = (appliance.data_dir / "recordings" / MEETING).iterdir()
    for name in ("mixed.wav", f"{ALICE}-Alice.wav"):
        path = session / name
        size = path.stat().st_size
        with wave.open(str(path), "rb") as wav:
            frames = wav.getnframes()
            assert len(wav.readframes(frames)) == frames * 2
        assert frames > 0
        # The header never claims more than the file holds, and lags it by at most
        # about a second (one sync interval of 64 000 bytes).
        assert 44 + frames * 2 <= size <= 44 + frames * 2 + 64_000 + 640
        assert frames / 32000 >= recorded_for - 1.5, (name, frames, recorded_for)
    # The worker notices that its supervisor is gone, and exits.
    deadline = time.monotonic() + 15
    while pid_alive(detail["worker_pid"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not pid_alive(detail["worker_pid"])


def test_plugins_are_set_per_meeting_in_the_join_request(appliance_factory, tmp_path):
    appliance = appliance_factory(HMB_PLUGINS="recorder")
    scenario = two_speakers(tmp_path, ends_at=0.5)
    first, second, third = "5550003333", "5550004444", "5550005555"
    bad = appliance.post_meeting(first, plugins={"recorder": {"mixed": "no"}})
    assert bad.status_code == 400
    assert bad.json()["error"] == {
        "code": "INVALID_REQUEST",
        "message": "plugins.recorder.mixed must be a bool",
    }
    unknown = appliance.post_meeting(first, plugins={"recoder": {}})
    assert unknown.status_code == 400
    assert "no plugin 'recoder'" in unknown.json()["error"]["message"]
    assert appliance.http.get(f"/api/meetings/{first}").status_code == 404

    off = {"recorder": {"enabled": False}}
    one_way_only = {"recorder": {"mixed": False, "share_audio": False}}
    assert appliance.post_meeting(first, scenario=scenario, plugins=off).is_success
    assert appliance.post_meeting(second, scenario=scenario, plugins=one_way_only)
    assert appliance.post_meeting(third, scenario=scenario).is_success
    for meeting_id in (first, second, third):
        wait_plugins_done(appliance, meeting_id)

    recordings = appliance.data_dir / "recordings"
    assert not (recordings / first).exists()
    assert appliance.meeting(first)["stats"]["plugins"] == {}
    assert {p.name for p in (recordings / second).glob("*/*.wav")} == {
        f"{ALICE}-Alice_Ång_ström.wav"
    }
    assert {p.name for p in (recordings / third).glob("*/*.wav")} == {
        "mixed.wav",
        f"{ALICE}-Alice_Ång_ström.wav",
    }


def test_the_appliance_does_not_start_with_a_missing_plugin(tmp_path):
    env = dict(os.environ, HTTP_ADDR="127.0.0.1:0", HMB_DATA_DIR=str(tmp_path))
    env["HMB_PLUGINS"] = "recorder,nope"
    result = subprocess.run(
        [sys.executable, "-m", "appliance", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "HMB_PLUGINS names 'nope', which is not installed" in result.stderr


# -- a third-party plugin -----------------------------------------------------------


def test_a_plugin_package_is_found_through_its_entry_point(
    probe_plugin, appliance_factory, tmp_path
):
    appliance = appliance_factory(HMB_PLUGINS="probe")
    plugins = {p["name"]: p for p in appliance.http.get("/api/plugins").json()}
    assert plugins["probe"]["distribution"] == "hmb-probe-plugin 0.1.0"
    assert plugins["probe"]["builtin"] is False
    assert plugins["probe"]["state"] == "running"
    assert plugins["probe"]["enabled"] is True
    assert "on_audio_frame" in plugins["probe"]["hooks"]
    assert plugins["recorder"]["builtin"] is True
    assert plugins["recorder"]["enabled"] is False
    health = appliance.http.get("/health").json()
    assert health["plugins"]["probe"] == "running"

    appliance.post_meeting(MEETING, scenario=two_speakers(tmp_path))
    client = Recorder(f"{appliance.ws_url}/ws/audio/{MEETING}")
    client.join()
    detail = wait_plugins_done(appliance, MEETING)

    (log,) = (appliance.data_dir / "probe").glob(f"{MEETING}-*.jsonl")
    events = [json.loads(line) for line in log.read_text().splitlines()]
    hooks = [e["hook"] for e in events]
    assert hooks[0] == "started"
    assert hooks[-1] == "finished"
    statuses = [e["status"] for e in events if e["hook"] == "status"]
    assert statuses[-1] == "MEETING_STATUS_ENDED"
    assert "MEETING_STATUS_INMEETING" in statuses
    joined = {e["user_id"]: e["name"] for e in events if e["hook"] == "joined"}
    assert joined == {ALICE: "Alice Ång/ström", BOB: "Bob"}
    assert hooks.index("share_started") < hooks.index("share_stopped")

    # Every frame, with the very bytes the WebSocket client got.
    streams = events[-1]["streams"]
    for (audio_type, user_id), pcm in client.streams.items():
        stream = streams[f"{audio_type}:{user_id}"]
        assert stream["frames"] == len(pcm) // 640
        assert stream["sha256"] == hashlib.sha256(pcm).hexdigest()
        assert (stream["dtype"], stream["writeable"]) == ("int16", False)
    assert streams["video"]["size"] == [64, 48]
    assert streams["video"]["frames"] == detail["stats"]["share_frames_received"]


# -- isolation ------------------------------------------------------------------------


class TimedClient:
    """Reads the mixed stream of a stamp_capture scenario and notes, per message, how
    long after the capture of its newest frame it arrived."""

    def __init__(self, url: str) -> None:
        self.pcm = bytearray()
        self.delays_ms: list[float] = []
        self.connected = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(url,), daemon=True)
        self.thread.start()
        assert self.connected.wait(10)

    def _run(self, url: str) -> None:
        with connect(f"{url}?type=mixed", open_timeout=10) as ws:
            self.connected.set()
            try:
                for message in ws:
                    arrived = time.monotonic_ns()
                    if isinstance(message, str):
                        continue
                    pcm = message[16:]
                    (newest,) = struct.unpack_from("<Q", pcm, len(pcm) - 640)
                    self.delays_ms.append((arrived - newest) / 1e6)
                    self.pcm += pcm
            except ConnectionClosed:
                pass

    def join(self) -> None:
        self.thread.join(30)
        assert not self.thread.is_alive()

    def figures(self) -> dict[str, float]:
        delays = np.array(self.delays_ms)
        return {
            "messages": len(delays),
            "p50": round(float(np.percentile(delays, 50)), 1),
            "p95": round(float(np.percentile(delays, 95)), 1),
            "max": round(float(delays.max()), 1),
        }


def test_slow_and_raising_plugins_do_not_delay_clients(
    probe_plugin, appliance_factory, tmp_path
):
    appliance = appliance_factory(
        HMB_PLUGINS="sleepy,faulty,probe",
        HMB_PLUGINS_AUDIO_QUEUE="100",
        HMB_PLUGINS_DRAIN_TIMEOUT_S="1",
        # Short windows: more messages to measure, and delays are not hidden in them.
        HMB_WS_WINDOW_MS="20",
    )
    scenario = scenario_file(
        tmp_path,
        f"""
[[participant]]
user_id = {ALICE}
audio = {{ noise_seed = 4 }}
speaks = [[0.0, 100.0]]
[meeting]
waiting_room_s = 0.5
ends_at = 4.0
stamp_capture = true
""",
    )
    figures = {}
    details = {}
    runs = [
        ("without", "5550006666", {"sleepy": {"enabled": False}, "faulty": {}}),
        ("with", "5550007777", {}),
    ]
    runs[0][2]["faulty"]["enabled"] = False
    for label, meeting_id, plugins in runs:
        appliance.post_meeting(meeting_id, scenario=scenario, plugins=plugins)
        client = TimedClient(f"{appliance.ws_url}/ws/audio/{meeting_id}")
        client.join()
        # The stream is complete, whatever the plugins do.
        assert len(client.pcm) == 400 * 640, label
        figures[label] = client.figures()
        details[label] = appliance.meeting(meeting_id)
    print(f"\nmixed-stream delay after capture, ms: {figures}")

    # Receive times track real time as closely with the bad plugins as without.
    assert figures["with"]["p50"] <= figures["without"]["p50"] + 10, figures
    assert figures["with"]["p95"] <= figures["without"]["p95"] + 30, figures
    assert figures["with"]["max"] < 250, figures

    stats = details["with"]["stats"]
    sleepy, faulty, probe = (stats["plugins"][n] for n in ("sleepy", "faulty", "probe"))
    assert sleepy["dropped_frames"] > 0
    assert stats["plugin_dropped_frames"] >= sleepy["dropped_frames"]
    assert faulty["errors"] > 0 and faulty["frames_delivered"] == 0
    assert probe["dropped_frames"] == 0 and probe["errors"] == 0
    assert set(details["without"]["stats"]["plugins"]) == {"probe"}

    # Shutdown waits for the sleepy plugin only as long as the drain timeout.
    started = time.monotonic()
    assert appliance.stop() == 0
    assert time.monotonic() - started < 15
    log = appliance.log()
    assert "dropping their queued frames plugins=sleepy" in log
    # The slow plugin's drops were one burst: logged once, not per frame.
    assert log.count("plugin is behind; dropping its frames plugin=sleepy") == 1
    # The raising plugin's errors were logged once (with a traceback), not per frame.
    assert log.count("plugin raised; counting further errors") == 1
    assert log.count("RuntimeError: faulty plugin rejects frame") == 1


# -- share capture --------------------------------------------------------------------


def share_scenario(pattern: str, slide_s: float = 1.0) -> str:
    return f"""
[[participant]]
user_id = {BOB}
name = "Bob"
audio = {{ tone_hz = 440 }}

[[share]]
user_id = {BOB}
start = 1.5
stop = 5.5
width = 160
height = 90
fps = 10
pattern = "{pattern}"
slide_s = {slide_s}

[meeting]
ends_at = 6.0
"""


def snapshots_of(appliance, meeting_id: str) -> tuple[list[Path], list[dict]]:
    (session,) = (appliance.data_dir / "shares" / meeting_id).iterdir()
    index = [
        json.loads(line) for line in (session / "index.jsonl").read_text().splitlines()
    ]
    return sorted(session.glob("*.png")), index


def test_snapshots_follow_the_share_content(appliance_factory, tmp_path):
    appliance = appliance_factory(
        HMB_PLUGINS="share_capture", HMB_PLUGIN_SHARE_CAPTURE_MAX_FPS="5"
    )
    slides, still, moving = "5550008881", "5550008882", "5550008883"
    posts = [
        (slides, share_scenario("slides"), None),
        (still, share_scenario("slides", slide_s=60), None),
        (moving, share_scenario("moving"), {"share_capture": {"max_fps": 2.0}}),
    ]
    for meeting_id, text, plugins in posts:
        scenario = scenario_file(tmp_path, text, f"{meeting_id}.toml")
        response = appliance.post_meeting(
            meeting_id, scenario=scenario, plugins=plugins
        )
        assert response.status_code == 202

    # Before anything is shared there is no picture.
    appliance.wait_status(slides, "MEETING_STATUS_INMEETING")
    nothing = appliance.http.get(f"/api/meetings/{slides}/share/latest.png")
    assert nothing.status_code == 404
    assert "has no share frame" in nothing.json()["error"]["message"]
    # While sharing, the latest frame.
    deadline = time.monotonic() + 10
    while appliance.meeting(slides)["sharing_user_id"] is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.3)
    live = appliance.http.get(f"/api/meetings/{slides}/share/latest.png")
    assert live.status_code == 200
    assert live.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(live.content)) as picture:
        assert picture.size == (160, 90)

    for meeting_id, _, _ in posts:
        wait_plugins_done(appliance, meeting_id)

    # Four slides, four snapshots; a still share, one; moving content, throttled.
    counts = {}
    for meeting_id in (slides, still, moving):
        pngs, index = snapshots_of(appliance, meeting_id)
        assert [entry["file"] for entry in index] == [p.name for p in pngs]
        assert all(
            (e["width"], e["height"], e["user_id"]) == (160, 90, BOB) for e in index
        )
        assert [e["utc"] for e in index] == sorted(e["utc"] for e in index)
        for png in pngs:
            with Image.open(png) as picture:
                assert picture.size == (160, 90)
        counts[meeting_id] = len(pngs)
    assert counts[slides] == 4
    assert counts[still] == 1
    assert 6 <= counts[moving] <= 9

    pictures = set()
    for png in snapshots_of(appliance, slides)[0]:
        with Image.open(png) as picture:
            pictures.add(picture.tobytes())
    assert len(pictures) == 4

    # Once the meeting is gone, the latest snapshot on disk answers.
    appliance.http.delete(f"/api/meetings/{slides}")
    after = appliance.http.get(f"/api/meetings/{slides}/share/latest.png")
    assert after.status_code == 200
    assert after.content == snapshots_of(appliance, slides)[0][-1].read_bytes()
    missing = appliance.http.get("/api/meetings/5550009999/share/latest.png")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "MEETING_NOT_FOUND"
    # A meeting that is here but never shared.
    appliance.post_meeting("5550008888", scenario="host_ends")
    unshared = appliance.http.get("/api/meetings/5550008888/share/latest.png")
    assert unshared.status_code == 404
    assert unshared.json()["error"]["code"] == "SHARE_NOT_FOUND"


def test_share_video_with_pyav(appliance_factory, tmp_path):
    av = pytest.importorskip("av")
    appliance = appliance_factory(
        HMB_PLUGINS="share_capture", HMB_PLUGIN_SHARE_CAPTURE_VIDEO="true"
    )
    scenario = scenario_file(tmp_path, share_scenario("moving"))
    appliance.post_meeting(MEETING, scenario=scenario)
    detail = wait_plugins_done(appliance, MEETING)

    (movie,) = (appliance.data_dir / "shares" / MEETING).glob("*/share-1.mp4")
    with av.open(str(movie)) as container:
        frames = list(container.decode(video=0))
    assert len(frames) == detail["stats"]["share_frames_received"]
    assert (frames[0].width, frames[0].height) == (160, 90)
    seconds = float(frames[-1].pts * frames[-1].time_base)
    assert 3.5 <= seconds <= 4.5
