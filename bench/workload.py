"""One measured load against one server: clients connect, warm up, T seconds measured.

The parent process only coordinates and samples ``/proc`` once a second; the clients'
CPU is their worker processes'. Figures cover the measured window only, except the
RSS growth figures, which compare with the server before the clients came.
"""

from __future__ import annotations

import math
import os
import time
from array import array

from bench import procstat
from bench.loadgen import ClientFleet, LoadConfig
from bench.servers import Appliance, Server, percentile


def _ms3(values) -> dict | None:
    if not values:
        return None
    ordered = sorted(values)
    return {
        "p50": round(percentile(ordered, 50), 2),
        "p99": round(percentile(ordered, 99), 2),
        "max": round(ordered[-1], 2),
        "n": len(ordered),
    }


def expected_frames_per_second(conf: LoadConfig) -> float | None:
    """Audio frames a client should get per second, if the filter makes that clear.

    Mixed: 100/s. One_way: 100/s too, since in the four-speaker workload exactly one
    person speaks at any time (on both servers). Share audio: none in this workload.
    """
    types = (
        {"mixed", "one_way", "share"}
        if conf.stream_type == "all"
        else set(conf.stream_type.split(","))
    )
    return 100.0 * len(types & {"mixed", "one_way"})


def _sleep_until_ns(t_ns: int) -> None:
    delay = (t_ns - time.monotonic_ns()) / 1e9
    if delay > 0:
        time.sleep(delay)


def run_load(
    server: Server,
    conf: LoadConfig,
    *,
    duration: float,
    warmup: float,
    window_ms: float,
    on_measure_start=None,
) -> dict:
    """Connect ``conf``'s clients to ``server``, measure ``duration`` s, summarize.

    ``on_measure_start(server)`` runs when the measured window opens (for a profiler);
    it may return a callable, run when the window closes.
    """
    rss_before = procstat.rss_mb(server.pid)
    workers = server.worker_pids()
    fleet = ClientFleet(conf)
    finish_hook = None
    try:
        hello = fleet.wait_connected()
        if hello["connected"] == 0:
            fleet.abort()
            return {"error": "no client connected", "connect": hello}
        start_ns = time.monotonic_ns() + int(warmup * 1e9)
        end_ns = start_ns + int(duration * 1e9)
        fleet.measure(start_ns, end_ns)
        _sleep_until_ns(start_ns - 300_000_000)
        drops0 = server.dropped_frames()
        wdrops0 = server.worker_dropped_frames() if isinstance(server, Appliance) else 0
        _sleep_until_ns(start_ns)
        ours = {server.pid, *workers, *fleet.pids}
        others0 = procstat.all_cpu()
        cpu0 = (
            procstat.cpu_seconds(server.pid),
            procstat.cpu_sum(workers),
            procstat.cpu_sum(fleet.pids),
            procstat.machine_busy_seconds(),
        )
        t0 = time.monotonic()
        if on_measure_start is not None:
            finish_hook = on_measure_start(server)
        samples = []
        prev, prev_t = cpu0, t0
        for k in range(1, math.ceil(duration) + 1):
            _sleep_until_ns(min(start_ns + k * 1_000_000_000, end_ns))
            now = time.monotonic()
            cur = (
                procstat.cpu_seconds(server.pid) or 0.0,
                procstat.cpu_sum(workers),
                procstat.cpu_sum(fleet.pids),
                procstat.machine_busy_seconds(),
            )
            dt = max(1e-6, now - prev_t)
            worker_rss = [procstat.rss_mb(p) or 0.0 for p in workers]
            samples.append(
                {
                    "server_cpu_pct": round(100 * (cur[0] - prev[0]) / dt, 1),
                    "workers_cpu_pct": round(100 * (cur[1] - prev[1]) / dt, 1),
                    "clients_cpu_pct": round(100 * (cur[2] - prev[2]) / dt, 1),
                    "machine_busy_pct": round(100 * (cur[3] - prev[3]) / dt, 1),
                    "server_rss_mb": round(procstat.rss_mb(server.pid) or 0.0, 1),
                    "worker_rss_max_mb": round(max(worker_rss, default=0.0), 1),
                }
            )
            prev, prev_t = cur, now
        cpu1 = prev
        measured = prev_t - t0
        others_s = procstat.others_cpu(others0, procstat.all_cpu(), ours)
        if finish_hook is not None:
            finish_hook()
            finish_hook = None
        drops1 = server.dropped_frames()
        wdrops1 = server.worker_dropped_frames() if isinstance(server, Appliance) else 0
        mem = procstat.memory_mb(server.pid) or (None, None)
        in_meetings = (
            server.meeting_worker_pids() if isinstance(server, Appliance) else workers
        )
        worker_mem = [procstat.memory_mb(p) for p in in_meetings]
        worker_mem = [m for m in worker_mem if m]
        results = fleet.results()
    except BaseException:
        fleet.abort()
        raise
    finally:
        if finish_hook is not None:
            finish_hook()
        fleet.close()

    rows = [r for res in results for r in res["rows"]]
    n_clients = fleet.total
    worst_by_second = [
        round(max(ws), 1)
        for ws in zip(*(res["worst_by_second_ms"] for res in results), strict=True)
    ]
    for sample, worst in zip(samples, worst_by_second, strict=False):
        sample["worst_latency_ms"] = worst
    pooled = {
        key: array("d", (v for res in results for v in res[key]))
        for key in ("latency_ms", "lag_ms", "lag_oldest_ms")
    }
    messages = sum(r["messages"] for r in rows)
    pcm_bytes = sum(r["pcm_bytes"] for r in rows)
    fps = expected_frames_per_second(conf)
    expected_frames = fps * duration * n_clients if fps else None
    frames = pcm_bytes / 640
    server_cpu_s = (cpu1[0] - cpu0[0]) if cpu0[0] is not None else None
    workers_cpu_s = cpu1[1] - cpu0[1]
    clients_cpu_s = cpu1[2] - cpu0[2]
    busy_s = cpu1[3] - cpu0[3]
    per_client_ratio = (
        [r["pcm_bytes"] / 640 / (fps * duration) for r in rows] if fps else []
    )
    errors = [r["error"] for r in rows if r["error"]]
    latency = _ms3(pooled["latency_ms"]) if conf.stamped else None
    out = {
        "server": server.name,
        "meetings": len(conf.meeting_ids),
        "clients_per_meeting": conf.clients_per_meeting,
        "clients": n_clients,
        "window_ms": window_ms,
        "type": conf.stream_type,
        "client_procs": conf.procs,
        "client_loop": conf.loop,
        "duration_s": duration,
        "measured_s": round(measured, 3),
        "connect": hello,
        "messages": messages,
        "pcm_bytes": pcm_bytes,
        "frames": int(frames),
        "expected_frames": int(expected_frames) if expected_frames else None,
        "delivered_ratio": round(frames / expected_frames, 5)
        if expected_frames
        else None,
        "worst_client_ratio": round(min(per_client_ratio), 5)
        if per_client_ratio
        else None,
        "dropped_frames_notified": sum(r["dropped_frames"] for r in rows),
        "dropped_frames_notified_in_window": sum(
            r["dropped_frames_in_window"] for r in rows
        ),
        "server_dropped_frames_in_window": (
            drops1 - drops0 if drops0 is not None and drops1 is not None else None
        ),
        "server_dropped_frames_total": drops1,
        "worker_dropped_frames_in_window": wdrops1 - wdrops0,
        "stamp_gaps": sum(r["stamp_gaps"] for r in rows) if conf.stamped else None,
        "latency_ms": latency,
        "lag_ms": _ms3(pooled["lag_ms"]),
        "lag_oldest_ms": _ms3(pooled["lag_oldest_ms"]),
        "client_errors": len(errors),
        "client_error_sample": errors[:3],
        "bad_format": sum(1 for r in rows if r["format_ok"] is False),
        "no_format": sum(1 for r in rows if r["format_ok"] is None),
        "server_cpu_pct": round(100 * server_cpu_s / measured, 1)
        if server_cpu_s is not None
        else None,
        "server_cpu_us_per_message": (
            round(1e6 * server_cpu_s / messages, 2)
            if server_cpu_s and messages
            else None
        ),
        "server_rss_before_clients_mb": round(rss_before, 1) if rss_before else None,
        "server_rss_mb": round(mem[0], 1) if mem[0] else None,
        "server_peak_rss_mb": round(mem[1], 1) if mem[1] else None,
        "server_rss_per_client_kb": round(1000 * mem[0] / n_clients, 1)
        if mem[0]
        else None,
        "server_rss_growth_per_client_kb": (
            round(1000 * (mem[0] - rss_before) / n_clients, 1)
            if mem[0] and rss_before
            else None
        ),
        "workers": len(workers),
        "workers_cpu_pct": round(100 * workers_cpu_s / measured, 1)
        if workers
        else None,
        "worker_rss_mb_max": round(max(m[0] for m in worker_mem), 1)
        if worker_mem
        else None,
        "worker_rss_mb_mean": (
            round(sum(m[0] for m in worker_mem) / len(worker_mem), 1)
            if worker_mem
            else None
        ),
        "clients_cpu_pct": round(100 * clients_cpu_s / measured, 1),
        "client_cpu_pct_per_proc": [
            round(100 * r["cpu_s"] / measured, 1) for r in results
        ],
        "client_peak_rss_mb_per_proc": [round(r["maxrss_mb"], 1) for r in results],
        "machine_busy_pct": round(100 * busy_s / measured, 1),
        "other_processes_cpu_pct": round(100 * others_s / measured, 1),
        "per_second": samples,
    }
    used = (
        (out["server_cpu_pct"] or 0)
        + (out["workers_cpu_pct"] or 0)
        + out["clients_cpu_pct"]
        + out["other_processes_cpu_pct"]
    )
    out["cpu_saturated"] = used >= 95 * (os.cpu_count() or 1)
    out["verdict"] = verdict(out)
    return out


def verdict(r: dict) -> dict:
    """The issue's pass rule: 0 drops and p99 within window + 20 ms (plus all bytes).

    The latency is the capture stamp's when the server stamps, else the anchor's
    oldest-byte lag; ``like_for_like`` applies the lag rule to any server.
    """
    limit = r["window_ms"] + 20
    drops = (r["dropped_frames_notified_in_window"] or 0) + (
        r["server_dropped_frames_in_window"] or 0
    )
    connected = r["connect"]["connected"] == r["clients"]
    delivered = r["delivered_ratio"] is None or r["delivered_ratio"] >= 0.99
    primary = r["latency_ms"] or r["lag_oldest_ms"]
    lag = r["lag_oldest_ms"]
    p99_ok = primary is not None and primary["p99"] <= limit
    lag_ok = lag is not None and lag["p99"] <= limit
    base = connected and drops == 0 and delivered and not r["client_errors"]
    return {
        "limit_ms": limit,
        "connected": connected,
        "drops": drops,
        "delivered_ok": delivered,
        "p99_ok": p99_ok,
        "latency_source": "capture stamp" if r["latency_ms"] else "lag (oldest byte)",
        "pass": base and p99_ok,
        "pass_like_for_like": base and lag_ok,
    }
