"""Share throughput: 1080p I420 frames through the worker protocol into the supervisor.

Each of K meetings plays a scenario with a 1920x1080 share at ``fps`` from time 0 (no
WebSocket clients: raw video never goes over the audio WebSocket). The figure is the
rate at which the supervisor *received* share frames (``stats.share_frames_received``
of ``GET /api/meetings/{id}``), against what the sims produced, plus the worker's own
drop count (its outbox drops media when the supervisor falls behind) and the CPU and
RSS of supervisor and workers.

The issue's figure is frames delivered to a no-op ``on_share_frame`` plugin:
:func:`noop_plugin_setup` loads one into the appliance when the plugin system
(``appliance/plugins``) exists, and its count is reported beside the supervisor's;
without a plugin system the figure stops at the supervisor, the last step before the
plugins.
"""

from __future__ import annotations

import importlib.util
import math
import os
import time
from pathlib import Path

from bench import procstat
from bench.servers import Appliance, meeting_ids, share_scenario

NOOP_PLUGIN = "bench_noop"
_NOOP_MODULE = """
import os, time
from appliance.plugins import hookimpl


class NoopShare:
    \"\"\"Counts share frames; the count goes to a file once a second.\"\"\"

    def __init__(self):
        self.frames = 0
        self.path = os.environ.get("BENCH_NOOP_COUNT_FILE")
        self.written = 0.0

    @hookimpl
    def on_share_frame(self, meeting, frame):
        self.frames += 1
        now = time.monotonic()
        if self.path and now - self.written >= 1.0:
            self.written = now
            with open(self.path + ".tmp", "w") as f:
                f.write(str(self.frames))
            os.replace(self.path + ".tmp", self.path)
"""


def noop_plugin_setup(tmp: Path) -> dict | None:
    """Environment that makes the appliance run a no-op ``on_share_frame`` plugin.

    HOOK for the plugin system: ``None`` (frames are counted at the supervisor) while
    ``appliance.plugins`` does not exist. When it does, a plugin ``bench_noop`` is laid
    out in ``tmp`` as a module plus ``*.dist-info`` with an entry point of the
    ``headless_meeting_bot`` group (the group plugins are discovered through), put on
    the appliance's ``PYTHONPATH`` and enabled with ``HMB_PLUGINS``; it counts frames
    into ``BENCH_NOOP_COUNT_FILE`` once a second. Nothing is installed anywhere.
    """
    if importlib.util.find_spec("appliance.plugins") is None:
        return None
    site = tmp / "noop_plugin"
    dist = site / "bench_noop_plugin-0.0.0.dist-info"
    dist.mkdir(parents=True, exist_ok=True)
    (site / "bench_noop_plugin.py").write_text(_NOOP_MODULE)
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: bench-noop-plugin\nVersion: 0.0.0\n"
    )
    (dist / "entry_points.txt").write_text(
        f"[headless_meeting_bot]\n{NOOP_PLUGIN} = bench_noop_plugin:NoopShare\n"
    )
    path = os.environ.get("PYTHONPATH")
    return {
        "PYTHONPATH": f"{site}{os.pathsep}{path}" if path else str(site),
        "HMB_PLUGINS": NOOP_PLUGIN,
        "BENCH_NOOP_COUNT_FILE": str(tmp / "noop_count"),
    }


def _plugin_count(env: dict | None) -> tuple[int, float] | None:
    """The plugin's count and when it was written (the file's mtime)."""
    if not env:
        return None
    path = Path(env["BENCH_NOOP_COUNT_FILE"])
    try:
        return int(path.read_text()), path.stat().st_mtime
    except (OSError, ValueError):
        return None


def run_share(
    *,
    meetings: int,
    fps: float,
    width: int,
    height: int,
    duration: float,
    warmup: float,
    plugin: bool = True,
) -> dict:
    plugin_env = None
    server = Appliance(window_ms=100)
    try:
        plugin_env = noop_plugin_setup(server.tmp) if plugin else None
        if plugin_env:
            server.extra_env.update(plugin_env)
        server.start()
        scenario = share_scenario(server.tmp, width, height, fps)
        joins = server.open_meetings(meeting_ids(meetings), scenario)
        workers = server.worker_pids()
        time.sleep(warmup)
        stats0 = server.meeting_stats()
        plugin0 = _plugin_count(plugin_env)
        cpu0 = (procstat.cpu_seconds(server.pid), procstat.cpu_sum(workers))
        t0 = time.monotonic()
        per_second = []
        prev, prev_frames, prev_t = (
            cpu0,
            sum(s["share_frames_received"] for s in stats0),
            t0,
        )
        for k in range(1, math.ceil(duration) + 1):
            time.sleep(max(0.0, t0 + k - time.monotonic()))
            now = time.monotonic()
            cur = (procstat.cpu_seconds(server.pid) or 0.0, procstat.cpu_sum(workers))
            frames = sum(s["share_frames_received"] for s in server.meeting_stats())
            dt = max(1e-6, now - prev_t)
            per_second.append(
                {
                    "frames_per_s": round((frames - prev_frames) / dt, 1),
                    "server_cpu_pct": round(100 * (cur[0] - prev[0]) / dt, 1),
                    "workers_cpu_pct": round(100 * (cur[1] - prev[1]) / dt, 1),
                    "server_rss_mb": round(procstat.rss_mb(server.pid) or 0.0, 1),
                }
            )
            prev, prev_frames, prev_t = cur, frames, now
        measured = prev_t - t0
        stats1 = server.meeting_stats()
        time.sleep(1.1)  # the plugin writes its count once a second
        plugin1 = _plugin_count(plugin_env)
        plugin_frames = plugin_rate = None
        if plugin0 is not None and plugin1 is not None and plugin1[1] > plugin0[1]:
            plugin_frames = plugin1[0] - plugin0[0]
            plugin_rate = round(plugin_frames / (plugin1[1] - plugin0[1]), 1)
        received = sum(s["share_frames_received"] for s in stats1) - sum(
            s["share_frames_received"] for s in stats0
        )
        received_bytes = sum(s["share_bytes_received"] for s in stats1) - sum(
            s["share_bytes_received"] for s in stats0
        )
        worker_drops = sum(s.get("worker_dropped_frames", 0) for s in stats1) - sum(
            s.get("worker_dropped_frames", 0) for s in stats0
        )
        mem = procstat.memory_mb(server.pid) or (None, None)
        worker_rss = [procstat.rss_mb(p) or 0.0 for p in workers]
        server_cpu_s = cur[0] - (cpu0[0] or 0.0)
        rate = received / measured
        return {
            "meetings": meetings,
            "width": width,
            "height": height,
            "fps_per_meeting": fps,
            "offered_frames_per_s": meetings * fps,
            "duration_s": duration,
            "measured_s": round(measured, 3),
            "frames_received": received,
            "frames_per_s": round(rate, 1),
            "megabytes_per_s": round(received_bytes / measured / 1e6, 1),
            "worker_dropped_frames": worker_drops,
            "delivered_to": "supervisor"
            + (" and no-op plugin" if plugin_env else " (no plugin system)"),
            "plugin": NOOP_PLUGIN if plugin_env else None,
            "plugin_frames": plugin_frames,
            "plugin_frames_per_s": plugin_rate,
            "server_cpu_pct": round(100 * server_cpu_s / measured, 1),
            "server_cpu_ms_per_frame": round(1000 * server_cpu_s / received, 2)
            if received
            else None,
            "workers_cpu_pct": round(100 * (cur[1] - cpu0[1]) / measured, 1),
            "server_rss_mb": round(mem[0], 1) if mem[0] else None,
            "server_peak_rss_mb": round(mem[1], 1) if mem[1] else None,
            "worker_rss_mb_max": round(max(worker_rss, default=0.0), 1),
            "join_ms": joins,
            "per_second": per_second,
        }
    finally:
        server.stop()
        server.cleanup()
