"""The one-file binary, built by packaging/build.sh (sim driver only, to keep CI short).

Slow: the build takes about a minute (more on a cold pip cache). The binary is built
once per test run; ``HMB_TEST_BINARY=/path/to/headless-meeting-bot`` uses one built
earlier instead. A build whose tools cannot be installed (build.sh exits 3) skips.

What is checked through the binary: ``--version`` and ``doctor``; ``serve`` with the
sim driver telling a fake systemd it is ready; a meeting POSTed, streamed over
WebSocket and DELETEd; the built-in recorder and a third-party plugin from
``plugins/`` beside the binary both running; worker processes reusing the bundle the
first process unpacked (one ``_MEI*`` folder); and after SIGTERM, no process and no
``_MEI*`` folder left. Start-up and worker spawn times are printed beside those of the
virtual environment; none is asserted, since CI machines vary.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import struct
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from websockets.sync.client import connect

from appliance import __version__
from tests.conftest import Appliance, pid_alive
from tests.test_systemd_notify import FakeSystemd

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
BUILD_TIMEOUT_S = 1200
SERVING = re.compile(r"serving address=http://([\d.]+):(\d+)")
STAMP = r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})"
INMEETING = "MEETING_STATUS_INMEETING"
# A spare worker is started once serving begins; joins measured before it is ready
# would measure its start-up instead.
SPARE_WARM_UP_S = 2.0


# One build per test run, failed or not: ("ok", path), ("skip", why), ("fail", why).
_built: dict[str, tuple[str, Path | str]] = {}


def built_binary() -> Path:
    """The binary under test: ``$HMB_TEST_BINARY``, or one built once for this run
    (other test modules call this too); skips when the build tools cannot be had."""
    given = os.environ.get("HMB_TEST_BINARY")
    if given:
        return Path(given).resolve()
    if "result" not in _built:
        _built["result"] = _build()
    kind, result = _built["result"]
    if kind == "skip":
        pytest.skip(str(result))
    if kind == "fail":
        pytest.fail(str(result))
    return Path(result)


def _build() -> tuple[str, Path | str]:
    dist = ROOT / "build" / "test-dist"
    started = time.monotonic()
    done = subprocess.run(
        [str(ROOT / "packaging" / "build.sh"), "--dist", str(dist)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
    )
    output = (done.stdout + done.stderr)[-3000:]
    if done.returncode == 3:
        return "skip", f"build tools could not be installed:\n{output}"
    if done.returncode != 0:
        return "fail", f"packaging/build.sh failed:\n{output}"
    path = dist / "headless-meeting-bot"
    print(
        f"\nbuilt {path}: {path.stat().st_size / 2**20:.1f} MiB "
        f"in {time.monotonic() - started:.0f} s"
    )
    return "ok", path


@pytest.fixture
def binary() -> Path:
    return built_binary()


def mei_dirs(tmp: Path) -> list[Path]:
    return sorted(tmp.glob("_MEI*"))


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` now (workers start sessions of their own, but
    stay children of the supervisor)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def stamp(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S,%f").timestamp()


def worker_spawn_times(data_dir: Path, log_text: str) -> list[float]:
    """Seconds from the supervisor starting each worker process to that worker's
    first log line (its Python is up and has imported the appliance)."""
    started = {
        name: stamp(when)
        for when, name in re.findall(STAMP + r".*worker started name=(\S+)", log_text)
    }
    times = []
    for log in (data_dir / "workers").glob("*/worker.log"):
        found = re.search(STAMP + r".*worker starting name=(\S+)", log.read_text())
        if found and found.group(2) in started:
            times.append(stamp(found.group(1)) - started[found.group(2)])
    return times


class Launched:
    """``serve`` of the binary or of the virtual environment, on loopback."""

    def __init__(self, command: list[str], tmp_path: Path, **env: str) -> None:
        self.tmp = tmp_path / "tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.data_dir = tmp_path / "data"
        self.log_path = tmp_path / "serve.log"
        full_env = dict(os.environ)
        for name in list(full_env):
            if name.startswith(("HMB_", "_PYI", "NOTIFY_SOCKET", "WATCHDOG_")):
                del full_env[name]
        full_env.update(
            HTTP_ADDR="127.0.0.1:0",
            HMB_DATA_DIR=str(self.data_dir),
            HMB_DRIVER="sim",
            LOG_LEVEL="info",
            # The bootloader unpacks into $TMPDIR: a folder of this test's own,
            # so the _MEI* folders counted are this binary's.
            TMPDIR=str(self.tmp),
        )
        full_env.update(env)
        self.started = time.monotonic()
        with open(self.log_path, "wb") as log_file:
            self.process = subprocess.Popen(
                [*command, "serve"],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=full_env,
            )
        self.appliance = self._wait_serving()
        self.startup_s = time.monotonic() - self.started

    def _wait_serving(self) -> Appliance:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = SERVING.search(self.log_path.read_text(errors="replace"))
            if found:
                url = f"http://{found.group(1)}:{found.group(2)}"
                return Appliance(self.process, url, self.data_dir, self.log_path)
            if self.process.poll() is not None:
                break
            time.sleep(0.01)
        self.process.kill()
        raise AssertionError("serve did not start:\n" + self.log())

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def join_time(self, meeting_id: str) -> float:
        """POST a meeting and poll (every 5 ms) until it is in the meeting."""
        started = time.monotonic()
        response = self.appliance.post_meeting(meeting_id)
        assert response.status_code == 202, response.text
        while self.appliance.meeting(meeting_id)["status"] != INMEETING:
            assert time.monotonic() - started < 30, self.appliance.meeting(meeting_id)
            time.sleep(0.005)
        return time.monotonic() - started

    def delete(self, meeting_id: str) -> None:
        response = self.appliance.http.delete(f"/api/meetings/{meeting_id}")
        assert response.status_code == 200, response.text

    def stop(self) -> int:
        return self.appliance.stop(timeout=60)


@pytest.fixture
def launched() -> Iterator[list[Launched]]:
    started: list[Launched] = []
    yield started
    for each in started:
        if each.process.poll() is None:
            each.process.kill()
            each.process.wait()


def write_third_party_plugin(folder: Path) -> None:
    """A plugin as ``pip install --target plugins/`` would lay it out: it counts the
    audio frames it gets and writes the count down when the meeting finishes."""
    folder.mkdir(parents=True)
    (folder / "hmb_frame_counter.py").write_text(
        textwrap.dedent(
            """
            import json

            from appliance.plugins import hookimpl


            class FrameCounter:
                def __init__(self):
                    self.frames = {}
                    self.folder = None

                @hookimpl
                def on_plugin_start(self, context):
                    self.folder = context.data_dir

                @hookimpl
                def on_audio_frame(self, meeting, frame):
                    self.frames[meeting] = self.frames.get(meeting, 0) + 1

                @hookimpl
                def on_meeting_finished(self, meeting):
                    path = self.folder / f"counted-{meeting.meeting_id}.json"
                    path.write_text(json.dumps(self.frames.pop(meeting, 0)))
            """
        )
    )
    info = folder / "hmb_frame_counter-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: hmb-frame-counter\nVersion: 1.0\n"
    )
    (info / "entry_points.txt").write_text(
        "[headless_meeting_bot]\nframe_counter = hmb_frame_counter:FrameCounter\n"
    )


def test_version_and_doctor(binary: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HMB_", "_PYI"))}
    env.update(
        TMPDIR=str(tmp_path),
        HTTP_ADDR="127.0.0.1:0",
        HMB_DATA_DIR=str(tmp_path / "data"),
    )
    started = time.monotonic()
    version = subprocess.run(
        [str(binary), "--version"], env=env, capture_output=True, text=True, timeout=60
    )
    elapsed = time.monotonic() - started
    assert version.stdout.strip() == __version__
    print(f"\nbinary --version: {elapsed:.2f} s (unpacking included)")
    doctor = subprocess.run(
        [str(binary), "doctor"], env=env, capture_output=True, text=True, timeout=120
    )
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert f"one-file binary {binary}" in doctor.stdout
    assert "plugins: 2 loaded: recorder, share_capture" in doctor.stdout
    print(doctor.stdout)
    assert mei_dirs(tmp_path) == []


def test_serve_stream_delete_and_stop(
    binary: Path, tmp_path: Path, launched: list[Launched]
) -> None:
    # The binary as install.sh lays it out, with a third-party plugin beside it.
    opt = tmp_path / "opt"
    opt.mkdir()
    copy = opt / "headless-meeting-bot"
    shutil.copy2(binary, copy)
    write_third_party_plugin(opt / "plugins")
    notify = FakeSystemd(tmp_path / "notify.sock")
    try:
        run = Launched(
            [str(copy)],
            tmp_path / "run",
            HMB_PLUGINS="recorder,frame_counter",
            NOTIFY_SOCKET=str(notify.path),
        )
        launched.append(run)
        sender, lines = notify.receive(30)
        ready_s = time.monotonic() - run.started
    finally:
        notify.close()
    assert lines[0] == "READY=1"
    # Python runs in the bootloader's child: why the unit says NotifyAccess=all.
    assert sender in descendants(run.process.pid)
    print(f"\nbinary start-up to READY=1: {ready_s:.2f} s")
    appliance = run.appliance

    plugins = {p["name"]: p for p in appliance.http.get("/api/plugins").json()}
    assert plugins["frame_counter"]["state"] == "running"
    assert plugins["frame_counter"]["distribution"] == "hmb-frame-counter 1.0"
    assert plugins["recorder"]["enabled"]

    meeting_id = "1234567890"
    time.sleep(SPARE_WARM_UP_S)
    join_s = run.join_time(meeting_id)
    with connect(f"{appliance.ws_url}/ws/audio/{meeting_id}?type=mixed") as ws:
        first = json.loads(ws.recv(timeout=10))
        assert first["type"] == "audio_format"
        pcm = 0
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            message = ws.recv(timeout=10)
            if isinstance(message, bytes):
                audio_type, user_id = struct.unpack_from("<QQ", message)
                assert (audio_type, user_id) == (0, 0)
                pcm += len(message) - 16
    # 1.5 s of 32 kHz S16LE is 96 000 bytes; allow for the first window.
    assert pcm >= 64_000, pcm

    # The supervisor and the workers (a leased one and a new spare) share the one
    # folder the first process unpacked.
    tree = descendants(run.process.pid)
    assert len(tree) >= 3, tree
    assert len(mei_dirs(run.tmp)) == 1, mei_dirs(run.tmp)

    run.delete(meeting_id)
    assert appliance.http.get(f"/api/meetings/{meeting_id}").status_code == 404
    assert run.stop() == 0
    left = [pid for pid in tree if pid_alive(pid)]
    assert left == [], left
    assert mei_dirs(run.tmp) == []
    counted = json.loads((run.data_dir / f"counted-{meeting_id}.json").read_text())
    assert counted > 0
    recordings = list((run.data_dir / "recordings" / meeting_id).glob("*/mixed.wav"))
    assert len(recordings) == 1 and recordings[0].stat().st_size > 44
    print(f"binary POST to INMEETING (warm spare): {join_s * 1000:.0f} ms")


@pytest.mark.parametrize("spares", ["0", "1"])
def test_worker_spawn_binary_against_venv(
    binary: Path, tmp_path: Path, launched: list[Launched], spares: str
) -> None:
    """POST to INMEETING and worker spawn time, binary and venv, three joins each.

    With a warm spare (``HMB_SPARE_WORKERS=1``) the join does not wait for a worker
    to start, so ``0`` shows the spawn cost itself.
    """
    figures = {}
    commands = {
        "binary": [str(binary)],
        "venv": [sys.executable, "-m", "appliance"],
    }
    for label, command in commands.items():
        run = Launched(command, tmp_path / label, HMB_SPARE_WORKERS=spares)
        launched.append(run)
        if spares != "0":
            time.sleep(SPARE_WARM_UP_S)
        joins = []
        for n in range(3):
            meeting_id = f"55500000{n:02d}"
            joins.append(run.join_time(meeting_id))
            if label == "binary":
                assert len(mei_dirs(run.tmp)) == 1
            run.delete(meeting_id)
        assert run.stop() == 0
        spawns = worker_spawn_times(run.data_dir, run.log())
        assert spawns, run.log()
        figures[label] = (run.startup_s, statistics.median(joins), spawns)
        if label == "binary":
            assert mei_dirs(run.tmp) == []
    print(f"\nHMB_SPARE_WORKERS={spares}")
    for label, (startup, join, spawns) in figures.items():
        print(
            f"  {label:6} start-up to serving {startup:.2f} s, POST to INMEETING "
            f"median {join * 1000:.0f} ms, worker spawn (exec to first log line) "
            f"median {statistics.median(spawns) * 1000:.0f} ms of {len(spawns)}"
        )
