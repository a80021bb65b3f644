"""The WebSocket audio stream, through a real appliance with the `websockets` client.

The byte-exact tests compute what the scenario's participants say from the WAV files
the test itself wrote, independently of the simulator's code, and compare every byte
each client received.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
import wave
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.conftest import json_messages

MEETING = "5550001111"
ALICE, BOB = 16778240, 16779264
FRAME = 320  # samples per 10 ms frame at 32 kHz

# Speaking and sharing in frames (10 ms); written to the scenario as seconds.
ALICE_SPEAKS = [(0, 100), (200, 250)]
BOB_SPEAKS = [(50, 220)]
SHARE = (100, 200)
END = 300


def write_clip(path: Path, seed: int, seconds: float) -> np.ndarray:
    """A 32 kHz mono WAV of random samples whose peak is full scale (so the
    simulator's peak normalisation at amplitude 1.0 leaves every sample as is)."""
    rng = np.random.default_rng(seed)
    clip = rng.integers(-6000, 6000, int(seconds * 32000), dtype=np.int16)
    clip[7] = 32767
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(32000)
        out.writeframes(clip.tobytes())
    return clip


def frame_of(clip: np.ndarray, k: int) -> np.ndarray:
    index = (np.arange(k * FRAME, (k + 1) * FRAME)) % len(clip)
    return clip[index]


def seconds(frames: int) -> str:
    return f"{frames / 100:.2f}"


def intervals(spans) -> str:
    return "[" + ", ".join(f"[{seconds(a)}, {seconds(b)}]" for a, b in spans) + "]"


@pytest.fixture
def exact_scenario(tmp_path: Path):
    clips = {
        "alice": write_clip(tmp_path / "alice.wav", 1, 1.37),
        "bob": write_clip(tmp_path / "bob.wav", 2, 0.91),
        "share": write_clip(tmp_path / "share.wav", 3, 0.53),
    }
    scenario = tmp_path / "exact.toml"
    scenario.write_text(
        f"""
[[participant]]
user_id = {ALICE}
name = "Alice"
audio = {{ file = "alice.wav" }}
amplitude = 1.0
speaks = {intervals(ALICE_SPEAKS)}

[[participant]]
user_id = {BOB}
name = "Bob"
audio = {{ file = "bob.wav" }}
amplitude = 1.0
speaks = {intervals(BOB_SPEAKS)}

[[share]]
user_id = {BOB}
start = {seconds(SHARE[0])}
stop = {seconds(SHARE[1])}
width = 64
height = 48
with_audio = true
audio = {{ file = "share.wav" }}
amplitude = 1.0

[meeting]
waiting_room_s = 0.5
ends_at = {seconds(END)}
"""
    )
    return scenario, clips


def expected_streams(clips) -> dict[tuple[int, int], bytes]:
    """Every stream of the exact scenario, computed from the clips alone."""
    streams: dict[tuple[int, int], list[bytes]] = defaultdict(list)

    def audible(spans, k):
        return any(a <= k < b for a, b in spans)

    for k in range(END):
        parts = []
        if audible(ALICE_SPEAKS, k):
            parts.append(frame_of(clips["alice"], k))
            streams[(1, ALICE)].append(parts[-1].tobytes())
        if audible(BOB_SPEAKS, k):
            parts.append(frame_of(clips["bob"], k))
            streams[(1, BOB)].append(parts[-1].tobytes())
        if audible([SHARE], k):
            parts.append(frame_of(clips["share"], k))
            streams[(2, BOB)].append(parts[-1].tobytes())
        mixed = np.zeros(FRAME, dtype=np.int32)
        for part in parts:
            mixed += part
        streams[(0, 0)].append(np.clip(mixed, -32768, 32767).astype("<i2").tobytes())
    return {key: b"".join(chunks) for key, chunks in streams.items()}


class Recorder:
    """Reads one WebSocket until the server closes it, on a thread of its own."""

    def __init__(self, url: str, **connect_args) -> None:
        self.url = url
        self.connect_args = connect_args
        self.streams: dict[tuple[int, int], bytearray] = defaultdict(bytearray)
        self.binary_sizes: list[int] = []
        self.texts: list[str] = []
        self.close_code: int | None = None
        self.extensions_header: str | None = "unset"
        self.connected = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.connected.wait(10), f"could not connect to {url}"

    def _run(self) -> None:
        with connect(self.url, open_timeout=10, **self.connect_args) as ws:
            self.extensions_header = ws.response.headers.get("Sec-WebSocket-Extensions")
            self.connected.set()
            try:
                for message in ws:
                    if isinstance(message, str):
                        self.texts.append(message)
                        continue
                    audio_type, user_id = struct.unpack_from("<QQ", message)
                    self.binary_sizes.append(len(message) - 16)
                    self.streams[(audio_type, user_id)] += message[16:]
            except ConnectionClosed:
                pass
            self.close_code = ws.close_code

    def join(self, timeout: float = 30) -> None:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the server never closed the stream"


def test_clients_receive_the_scenario_byte_for_byte(appliance, exact_scenario):
    scenario, clips = exact_scenario
    expected = expected_streams(clips)
    assert appliance.post_meeting(MEETING, scenario=str(scenario)).status_code == 202
    base = f"{appliance.ws_url}/ws/audio/{MEETING}"

    everything = Recorder(base)
    mixed = Recorder(f"{base}?type=mixed")
    alice = Recorder(f"{base}?type=one_way&user_id={ALICE}")
    share = Recorder(f"{base}?type=share")
    bob_any_type = Recorder(f"{base}?user_id={BOB}")
    recorders = [everything, mixed, alice, share, bob_any_type]
    for recorder in recorders:
        recorder.join()

    assert {k: bytes(v) for k, v in everything.streams.items()} == expected
    assert dict(mixed.streams) == {(0, 0): expected[(0, 0)]}
    assert dict(alice.streams) == {(1, ALICE): expected[(1, ALICE)]}
    assert dict(share.streams) == {(2, BOB): expected[(2, BOB)]}
    assert {k: bytes(v) for k, v in bob_any_type.streams.items()} == {
        key: expected[key] for key in [(0, 0), (1, BOB), (2, BOB)]
    }
    for recorder in recorders:
        texts = json_messages(recorder.texts)
        assert texts[0] == {
            "type": "audio_format",
            "sample_rate": 32000,
            "channels": 1,
            "sample_format": "s16le",
        }
        assert texts[-1]["type"] == "error"
        assert texts[-1]["code"] == "MEETING_ENDED"
        assert "EndMeetingReason_EndByHost" in texts[-1]["error"]
        assert recorder.close_code == 1000
        # The client offered permessage-deflate (the library's default); audio
        # streams never negotiate it.
        assert recorder.extensions_header is None
        assert all(size % 640 == 0 for size in recorder.binary_sizes)
    # A 100 ms window: 3 s of mixed audio arrive in about 30 messages, not 300.
    assert 25 <= len(mixed.binary_sizes) <= 40


def test_window_zero_sends_every_frame_on_its_own(appliance_factory, exact_scenario):
    appliance = appliance_factory(HMB_WS_WINDOW_MS="0")
    scenario, clips = exact_scenario
    appliance.post_meeting(MEETING, scenario=str(scenario))

    recorder = Recorder(f"{appliance.ws_url}/ws/audio/{MEETING}?type=mixed")
    recorder.join()

    assert bytes(recorder.streams[(0, 0)]) == expected_streams(clips)[(0, 0)]
    assert recorder.binary_sizes == [640] * END


def test_heartbeats(appliance_factory):
    appliance = appliance_factory(HMB_WS_HEARTBEAT_S="0.2")
    appliance.post_meeting(MEETING)

    with connect(f"{appliance.ws_url}/ws/audio/{MEETING}?type=mixed") as ws:
        deadline = time.monotonic() + 10
        beats = []
        while len(beats) < 2 and time.monotonic() < deadline:
            message = ws.recv(timeout=5)
            if isinstance(message, str) and json.loads(message)["type"] == "heartbeat":
                beats.append(json.loads(message))

    assert len(beats) == 2
    assert abs(beats[0]["timestamp"] - time.time()) < 60


@pytest.mark.parametrize(
    ("query", "code", "close_code"),
    [
        ("", "MEETING_NOT_FOUND", 4404),
        ("?type=video", "INVALID_REQUEST", 4400),
        ("?user_id=alice", "INVALID_REQUEST", 4400),
        ("?queue_size=0", "INVALID_REQUEST", 4400),
        ("?queue_size=lots", "INVALID_REQUEST", 4400),
    ],
)
def test_stream_errors(appliance, query, code, close_code):
    meeting = "111222333" if code == "MEETING_NOT_FOUND" else MEETING
    appliance.post_meeting(MEETING)

    with connect(f"{appliance.ws_url}/ws/audio/{meeting}{query}") as ws:
        message = json.loads(ws.recv(timeout=10))
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=10)

    assert message["type"] == "error"
    assert message["code"] == code
    assert message["error"]
    assert ws.close_code == close_code


def test_a_slow_client_loses_only_its_own_frames(appliance, tmp_path):
    scenario = tmp_path / "long.toml"
    scenario.write_text(
        """
[[participant]]
user_id = 16778240
audio = { noise_seed = 7 }
speaks = [[0.0, 100.0]]
[meeting]
waiting_room_s = 0.3
ends_at = 4.0
"""
    )
    appliance.post_meeting(MEETING, scenario=str(scenario))
    url = f"{appliance.ws_url}/ws/audio/{MEETING}"

    # The slow client: a tiny receive buffer, and it reads nothing for a while.
    slow_sock = socket.create_connection(
        (appliance.http.base_url.host, appliance.http.base_url.port)
    )
    slow_sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    with connect(f"{url}?queue_size=20", sock=slow_sock, max_queue=1) as slow:
        fast = Recorder(url)
        fast.join()

        detail = appliance.meeting(MEETING)
        dropped = detail["stats"]["frames_dropped"]
        assert dropped > 0

        # The fast client got every frame, in order, and the end of the meeting.
        assert len(fast.streams[(0, 0)]) == 400 * 640
        assert len(fast.streams[(1, 16778240)]) == 400 * 640
        assert json_messages(fast.texts)[-1]["code"] == "MEETING_ENDED"

        # The slow one is told how many frames it lost; what it did get is whole.
        texts, sizes = [], []
        with pytest.raises(ConnectionClosed):
            while True:
                message = slow.recv(timeout=10)
                if isinstance(message, str):
                    texts.append(json.loads(message))
                else:
                    sizes.append(len(message) - 16)
    told = sum(t["frames"] for t in texts if t["type"] == "dropped")
    assert told == dropped
    assert all(size % 640 == 0 for size in sizes)
    assert sum(sizes) // 640 + told == 800
    assert texts[-1]["code"] == "MEETING_ENDED"
