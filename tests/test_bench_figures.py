"""Smoke tests of the benchmark harness's arithmetic (no servers, no timing)."""

from __future__ import annotations

import os
import subprocess
import sys

from bench import procstat
from bench.cli import checks, parse_args
from bench.loadgen import Client, LoadConfig, client_url, summarize_clients
from bench.profiling import summarize_collapsed
from bench.servers import percentile, share_scenario, stamped_scenario, summary_ms
from bench.workload import expected_frames_per_second, verdict

SECOND = 1_000_000_000
FRAME = 10_000_000


def _conf(**kw) -> LoadConfig:
    base = {
        "ws_base": "ws://127.0.0.1:1",
        "meeting_ids": ["1000000001"],
        "clients_per_meeting": 1,
    }
    base.update(kw)
    return LoadConfig(**base)


def _client_with_batches(
    start_ns: int, batches: int, frames: int, delay_ns: int
) -> Client:
    """A client that got ``batches`` messages of ``frames`` frames each, in order.

    Message ``k`` holds frames captured from ``start + k * frames * 10 ms``; it is
    received ``delay_ns`` after its *last* frame was captured.
    """
    c = Client("1000000001", 0)
    for k in range(batches):
        first = start_ns + k * frames * FRAME
        c.stamps.append(first)
        c.sizes.append(frames * 640)
        c.times.append(first + (frames - 1) * FRAME + delay_ns)
    return c


def test_latency_is_the_oldest_byte_from_its_stamp():
    start = 10 * SECOND
    c = _client_with_batches(start, batches=100, frames=10, delay_ns=5_000_000)
    out = summarize_clients(_conf(stamped=True), [c], start, start + 10 * SECOND)
    latencies = sorted(out["latency_ms"])
    # The oldest byte waited for the 9 later frames of its batch, then 5 ms.
    assert latencies[0] == latencies[-1] == 95.0
    row = out["rows"][0]
    assert row["messages"] == 100
    assert row["pcm_bytes"] == 100 * 10 * 640
    assert row["stamp_gaps"] == 0
    # The lag method, relative to the best case: constant delay means zero lag.
    assert max(abs(v) for v in out["lag_ms"]) < 1e-6
    assert all(abs(v - 100.0) < 1e-6 for v in out["lag_oldest_ms"])


def test_a_missing_batch_is_a_stamp_gap_and_window_bounds_count():
    start = 10 * SECOND
    c = _client_with_batches(start, batches=20, frames=10, delay_ns=1_000_000)
    for arr in (c.stamps, c.sizes, c.times):
        del arr[5]
    out = summarize_clients(_conf(stamped=True), [c], start, start + SECOND)
    assert out["rows"][0]["stamp_gaps"] == 1
    assert out["rows"][0]["messages"] == 9  # 10 batches per second, one missing


def test_unstamped_server_has_no_stamp_latency():
    start = 10 * SECOND
    c = _client_with_batches(start, batches=30, frames=10, delay_ns=1_000_000)
    out = summarize_clients(_conf(stamped=False), [c], start, start + 2 * SECOND)
    assert len(out["latency_ms"]) == 0
    assert len(out["lag_oldest_ms"]) == 20


def test_expected_rate_and_url():
    assert expected_frames_per_second(_conf()) == 100
    assert expected_frames_per_second(_conf(stream_type="all")) == 200
    assert expected_frames_per_second(_conf(stream_type="share")) == 0
    url = client_url(_conf(stream_type="mixed,one_way", queue_size=50), "1000000001")
    assert (
        url == "ws://127.0.0.1:1/ws/audio/1000000001?type=mixed,one_way&queue_size=50"
    )


def test_percentiles():
    values = list(range(1, 101))
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile([], 50) is None
    assert summary_ms([3.0, 1.0, 2.0])["p50"] == 2.0


def test_verdict_needs_no_drops_and_p99_within_window_plus_20():
    r = {
        "window_ms": 100,
        "connect": {"connected": 2},
        "clients": 2,
        "delivered_ratio": 1.0,
        "client_errors": 0,
        "dropped_frames_notified_in_window": 0,
        "server_dropped_frames_in_window": 0,
        "latency_ms": {"p50": 95, "p99": 119, "max": 130},
        "lag_oldest_ms": {"p50": 100, "p99": 121, "max": 130},
    }
    v = verdict(r)
    assert v["pass"] and not v["pass_like_for_like"]
    r["server_dropped_frames_in_window"] = 3
    assert not verdict(r)["pass"]


def test_collapsed_stacks_summary():
    text = (
        "proc (pid);a (x/appliance/bus/audio_bus.py:1);b (x/appliance/ws/wire.py:2) 3\n"
        "proc (pid);a (x/appliance/bus/audio_bus.py:1) 1\n"
    )
    s = summarize_collapsed(text)
    assert s["samples"] == 4
    assert s["self_by_function"][0] == ["b (appliance/ws/wire.py)", 75.0]
    assert (
        dict(map(tuple, s["inclusive_by_function"]))["a (appliance/bus/audio_bus.py)"]
        == 100.0
    )


def test_scenarios_are_valid(tmp_path):
    from appliance.drivers.sim.scenario import load_scenario

    scenario = load_scenario(str(stamped_scenario(tmp_path)))
    assert scenario.meeting.stamp_capture
    assert len(scenario.participants) == 4
    share = load_scenario(str(share_scenario(tmp_path, 1920, 1080, 30)))
    assert (share.shares[0].width, share.shares[0].height, share.shares[0].fps) == (
        1920,
        1080,
        30,
    )


def test_procstat_reads_this_process_and_its_children():
    assert procstat.cpu_seconds(os.getpid()) is not None
    rss, peak = procstat.memory_mb(os.getpid())
    assert 0 < rss <= peak
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"])
    try:
        assert child.pid in procstat.children(os.getpid())
    finally:
        child.kill()
        child.wait()
    assert procstat.cpu_seconds(child.pid) is None


def test_presets_and_checks():
    args = parse_args(["--workload", "window0"])
    assert (args.meetings, args.clients, args.window_ms) == (1, 10, 0)
    args = parse_args(["--clients", "150"])
    assert (args.meetings, args.clients, args.window_ms) == (10, 150, 100)
    items = checks({"share": {"frames_per_s": 95.0, "plugin": None}}, args)
    assert items == [
        {
            "figure": "share frames/s at the supervisor",
            "value": 95.0,
            "limit": 90.0,
            "met": True,
        }
    ]
