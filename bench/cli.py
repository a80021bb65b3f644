"""``python -m bench``: the appliance against the Go reference, one table, one JSON.

Modes (one per run):

* load (default): N meetings x M clients for T seconds, against the appliance and then
  the reference; also POST-to-INMEETING, worker RSS and supervisor growth per meeting.
* ``--knee``: the same load stepped up in clients per meeting, for both servers, until
  a step fails; the knee is the largest passing total.
* ``--share``: 1080p I420 share throughput through the worker protocol.

Every loop is bounded in count and time; every server listens on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

from bench import procstat
from bench.loadgen import LoadConfig, has_uvloop
from bench.profiling import PySpy
from bench.servers import (
    GOFANOUT_DEFAULT,
    Appliance,
    GoFanout,
    ensure_gofanout,
    meeting_ids,
    stamped_scenario,
    summary_ms,
)
from bench.share import run_share
from bench.workload import run_load

WORKLOADS = {
    # name: (meetings, clients per meeting, window ms)
    "fanout": (10, 100, 100),
    "window0": (1, 10, 0),
}

# The figures of issue 5.
TARGETS = {
    "cpu_ratio_max": 2.0,
    "server_rss_max_mb": 150.0,
    "window0_p50_ms": 2.0,
    "window0_p99_ms": 10.0,
    "join_p50_ms": 300.0,
    "worker_rss_max_mb": 40.0,
    "growth_per_meeting_max_mb": 2.0,
    "share_min_fps": 90.0,
}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--workload",
        choices=[*WORKLOADS, "custom"],
        default="fanout",
        help="fanout: 10 x 100 at a 100 ms window; window0: 1 x 10 at 0 ms; "
        "custom: --meetings/--clients/--window-ms (these override a "
        "preset too) (default %(default)s)",
    )
    p.add_argument("--meetings", type=int, help="meetings (N)")
    p.add_argument("--clients", type=int, help="WebSocket clients per meeting (M)")
    p.add_argument("--window-ms", type=float, help="batching window of both servers")
    p.add_argument(
        "--duration",
        type=float,
        default=60.0,
        help="measured seconds (default %(default)s)",
    )
    p.add_argument(
        "--warmup",
        type=float,
        default=5.0,
        help="seconds between the last connection and the measured window "
        "(default %(default)s)",
    )
    p.add_argument(
        "--join-interval",
        type=float,
        default=0.0,
        help="seconds between one meeting's INMEETING and the next POST "
        "(default %(default)s)",
    )
    p.add_argument(
        "--quiet-wait",
        type=float,
        default=60.0,
        help="wait up to this long for the machine to be nearly idle first "
        "(default %(default)s)",
    )
    p.add_argument(
        "--type",
        default="mixed",
        help="type filter of the clients (default %(default)s)",
    )
    p.add_argument(
        "--queue-size",
        type=int,
        help="queue_size of the clients (server default if absent)",
    )
    p.add_argument(
        "--procs",
        type=int,
        help="client processes (default: one per 1000 clients, at most 3)",
    )
    p.add_argument(
        "--no-deflate-offer",
        action="store_true",
        help="clients do not offer permessage-deflate (by default they do, as "
        "browsers do)",
    )
    p.add_argument("--no-reference", action="store_true", help="skip the Go reference")
    p.add_argument(
        "--gofanout",
        default=GOFANOUT_DEFAULT,
        help="the reference binary; built with the anchor's build.sh if missing "
        "(default %(default)s)",
    )
    p.add_argument(
        "--knee", action="store_true", help="knee search instead of one load"
    )
    p.add_argument(
        "--knee-steps",
        default="300,350,400,450",
        help="clients per meeting, step by step (default %(default)s)",
    )
    p.add_argument(
        "--knee-duration",
        type=float,
        default=25.0,
        help="measured seconds per knee step (default %(default)s)",
    )
    p.add_argument(
        "--knee-all-steps",
        action="store_true",
        help="keep stepping after a failed step (default: stop at the first)",
    )
    p.add_argument(
        "--share",
        action="store_true",
        help="share throughput instead of the audio load",
    )
    p.add_argument(
        "--share-meetings",
        type=int,
        default=3,
        help="meetings sharing at once (default %(default)s)",
    )
    p.add_argument(
        "--share-fps",
        type=float,
        default=30.0,
        help="share frames per second per meeting (default %(default)s)",
    )
    p.add_argument(
        "--share-size",
        default="1920x1080",
        help="share picture size (default %(default)s)",
    )
    p.add_argument(
        "--share-no-plugin",
        action="store_true",
        help="do not load the no-op share plugin even if the plugin system exists",
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="py-spy the supervisor during the appliance's measured window "
        "(it costs CPU: use a separate run for the figures)",
    )
    p.add_argument(
        "--profile-native", action="store_true", help="py-spy --native as well"
    )
    p.add_argument(
        "--appliance-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for the appliance, e.g. HMB_SPARE_WORKERS=2 "
        "(repeatable)",
    )
    p.add_argument(
        "--keep-logs",
        action="store_true",
        help="keep the servers' folders (logs, worker logs) and say where",
    )
    p.add_argument("--out-dir", help="folder for profiles (default: a new temp folder)")
    p.add_argument("--json-out", help="write every figure as JSON to this file")
    args = p.parse_args(argv)
    preset = WORKLOADS.get(args.workload, WORKLOADS["fanout"])
    args.meetings = args.meetings if args.meetings is not None else preset[0]
    args.clients = args.clients if args.clients is not None else preset[1]
    args.window_ms = args.window_ms if args.window_ms is not None else preset[2]
    if not (1 <= args.meetings <= 100 and 1 <= args.clients <= 5000):
        p.error("need 1 <= --meetings <= 100 and 1 <= --clients <= 5000")
    if (
        not (0 <= args.window_ms <= 10_000)
        or args.duration <= 0
        or args.duration > 3600
    ):
        p.error("need 0 <= --window-ms <= 10000 and 0 < --duration <= 3600")
    if (
        args.warmup < 0
        or args.warmup > 600
        or args.knee_duration <= 0
        or args.knee_duration > 600
    ):
        p.error("need 0 <= --warmup <= 600 and 0 < --knee-duration <= 600")
    try:
        args.knee_step_list = [int(x) for x in args.knee_steps.split(",") if x.strip()]
        w, h = (int(x) for x in args.share_size.lower().split("x"))
        args.share_wh = (w, h)
    except ValueError:
        p.error("--knee-steps is a comma list of integers; --share-size is WxH")
    try:
        args.appliance_env_dict = dict(kv.split("=", 1) for kv in args.appliance_env)
    except ValueError:
        p.error("--appliance-env takes NAME=VALUE")
    if not args.knee_step_list or len(args.knee_step_list) > 12:
        p.error("--knee-steps takes 1 to 12 steps")
    return args


def auto_procs(total_clients: int) -> int:
    return max(1, min(3, math.ceil(total_clients / 1000)))


def load_config(args, server, clients_per_meeting: int) -> LoadConfig:
    total = args.meetings * clients_per_meeting
    return LoadConfig(
        ws_base=server.ws_base,
        meeting_ids=meeting_ids(args.meetings),
        clients_per_meeting=clients_per_meeting,
        procs=args.procs or auto_procs(total),
        stream_type=args.type,
        queue_size=args.queue_size,
        stamped=server.stamped,
        offer_deflate=not args.no_deflate_offer,
    )


# ----------------------------------------------------------------- the appliance


def start_appliance(args, scenario_dir: Path) -> tuple[Appliance, dict]:
    """Start it, open the meetings; measure joins, RSS growth per meeting, workers."""
    server = Appliance(args.window_ms, extra_env=args.appliance_env_dict)
    server.start(max_meetings=args.meetings)
    time.sleep(1.0)
    rss0 = procstat.rss_mb(server.pid)
    scenario = stamped_scenario(scenario_dir)
    ids = meeting_ids(args.meetings)
    joins = server.open_meetings(ids[:1], scenario)
    time.sleep(0.5)
    rss1 = procstat.rss_mb(server.pid)
    more = (
        server.open_meetings(ids[1:], scenario, interval=args.join_interval)
        if len(ids) > 1
        else {"client_ms": [], "server_ms": []}
    )
    joins = {k: joins[k] + more[k] for k in joins}
    time.sleep(2.0)
    rss_n = procstat.rss_mb(server.pid)
    workers = server.meeting_worker_pids()
    worker_rss = [procstat.rss_mb(p) or 0.0 for p in workers]
    spares = [p for p in server.worker_pids() if p not in workers]
    spare_rss = [procstat.rss_mb(p) or 0.0 for p in spares]
    n = len(ids)
    info = {
        "scenario": str(scenario),
        "post_to_inmeeting_ms": summary_ms(joins["client_ms"]),
        "join_ms_server": summary_ms(joins["server_ms"]),
        "supervisor_rss_no_meetings_mb": round(rss0, 1),
        "supervisor_rss_one_meeting_mb": round(rss1, 1),
        "supervisor_rss_meetings_mb": round(rss_n, 1),
        "supervisor_growth_per_meeting_mb": round((rss_n - rss0) / n, 2),
        "supervisor_growth_per_meeting_after_first_mb": (
            round((rss_n - rss1) / (n - 1), 2) if n > 1 else None
        ),
        "workers": len(workers),
        "worker_rss_mb_max": round(max(worker_rss, default=0.0), 1),
        "worker_rss_mb_mean": round(sum(worker_rss) / len(worker_rss), 1)
        if worker_rss
        else None,
        "spare_workers": len(spares),
        "spare_worker_rss_mb": [round(r, 1) for r in spare_rss],
        "join_interval_s": args.join_interval,
    }
    return server, info


def start_reference(args, max_run_s: float) -> GoFanout | None:
    if args.no_reference:
        return None
    binary = ensure_gofanout(args.gofanout)
    if binary is None:
        print(
            "bench: no Go reference (build failed); ratios are skipped", file=sys.stderr
        )
        return None
    server = GoFanout(binary, args.meetings, args.window_ms, max_run_s)
    server.start()
    time.sleep(1.0)
    return server


# ----------------------------------------------------------------- modes


def finish(server, args) -> None:
    server.cleanup(keep=args.keep_logs)
    if args.keep_logs:
        print(f"bench: {server.name} folder kept: {server.tmp}", flush=True)


def mode_load(args, out_dir: Path) -> dict:
    result: dict = {"mode": "load"}
    server, info = start_appliance(args, out_dir)
    result["appliance_setup"] = info
    profiler = (
        PySpy(out_dir, args.duration, native=args.profile_native)
        if args.profile
        else None
    )
    try:
        print(
            f"bench: appliance pid {server.pid}: {args.meetings} x {args.clients} "
            "clients, "
            f"window {args.window_ms:g} ms, {args.duration:g} s ...",
            flush=True,
        )
        result["appliance"] = run_load(
            server,
            load_config(args, server, args.clients),
            duration=args.duration,
            warmup=args.warmup,
            window_ms=args.window_ms,
            on_measure_start=profiler.start if profiler else None,
        )
    finally:
        server.stop()
        finish(server, args)
    if profiler:
        result["profile"] = profiler.summary or {"error": profiler.error}
    ref = start_reference(args, args.duration + args.warmup + 600)
    if ref is not None:
        try:
            print(f"bench: gofanout pid {ref.pid}: the same load ...", flush=True)
            result["gofanout"] = run_load(
                ref,
                load_config(args, ref, args.clients),
                duration=args.duration,
                warmup=args.warmup,
                window_ms=args.window_ms,
            )
        finally:
            ref.stop()
            finish(ref, args)
    result["ratios"] = ratios(result.get("appliance"), result.get("gofanout"))
    return result


def mode_knee(args, out_dir: Path) -> dict:
    result: dict = {
        "mode": "knee",
        "steps": args.knee_step_list,
        "appliance": [],
        "gofanout": [],
    }
    step_s = args.knee_duration + args.warmup
    for name in ("appliance", "gofanout"):
        if name == "appliance":
            server, info = start_appliance(args, out_dir)
            result["appliance_setup"] = info
        else:
            server = start_reference(
                args, len(args.knee_step_list) * (step_s + 300) + 600
            )
            if server is None:
                break
        try:
            for m in args.knee_step_list:
                print(f"bench: knee {name} {args.meetings} x {m} ...", flush=True)
                r = run_load(
                    server,
                    load_config(args, server, m),
                    duration=args.knee_duration,
                    warmup=args.warmup,
                    window_ms=args.window_ms,
                )
                result[name].append(r)
                print("   ", knee_line(r), flush=True)
                if not r.get("verdict", {}).get("pass") and not args.knee_all_steps:
                    break
                time.sleep(2.0)  # the last step's clients are gone
        finally:
            server.stop()
            finish(server, args)
    for name in ("appliance", "gofanout"):
        passing = [
            r["clients"] for r in result[name] if r.get("verdict", {}).get("pass")
        ]
        result[f"{name}_knee"] = max(passing, default=0)
        like = [
            r["clients"]
            for r in result[name]
            if r.get("verdict", {}).get("pass_like_for_like")
        ]
        result[f"{name}_knee_like_for_like"] = max(like, default=0)
    return result


def mode_share(args, out_dir: Path) -> dict:
    w, h = args.share_wh
    print(
        f"bench: share {args.share_meetings} x {w}x{h} at {args.share_fps:g} fps, "
        f"{args.duration:g} s ...",
        flush=True,
    )
    return {
        "mode": "share",
        "share": run_share(
            meetings=args.share_meetings,
            fps=args.share_fps,
            width=w,
            height=h,
            duration=args.duration,
            warmup=args.warmup,
            plugin=not args.share_no_plugin,
        ),
    }


# ----------------------------------------------------------------- figures


def _div(a, b):
    return round(a / b, 2) if a is not None and b else None


def ratios(ours: dict | None, ref: dict | None) -> dict | None:
    if not ours or not ref or "error" in ours or "error" in ref:
        return None
    return {
        "server_cpu": _div(ours["server_cpu_pct"], ref["server_cpu_pct"]),
        "cpu_per_message": _div(
            ours["server_cpu_us_per_message"], ref["server_cpu_us_per_message"]
        ),
        "rss_per_client": _div(
            ours["server_rss_per_client_kb"], ref["server_rss_per_client_kb"]
        ),
        "rss_growth_per_client": _div(
            ours["server_rss_growth_per_client_kb"],
            ref["server_rss_growth_per_client_kb"],
        ),
        "lag_p99": _div(
            (ours["lag_ms"] or {}).get("p99"), (ref["lag_ms"] or {}).get("p99")
        ),
        "lag_oldest_p99": _div(
            (ours["lag_oldest_ms"] or {}).get("p99"),
            (ref["lag_oldest_ms"] or {}).get("p99"),
        ),
    }


def checks(result: dict, args) -> list[dict]:
    """Issue 5's figures that this run measured: figure, value, limit, met."""
    out = []

    def add(figure, value, limit, met):
        out.append({"figure": figure, "value": value, "limit": limit, "met": bool(met)})

    setup = result.get("appliance_setup")
    if setup:
        j = setup["post_to_inmeeting_ms"]
        if j:
            add(
                "POST to INMEETING p50 ms",
                j["p50"],
                TARGETS["join_p50_ms"],
                j["p50"] <= TARGETS["join_p50_ms"],
            )
        add(
            "sim worker RSS MB (max)",
            setup["worker_rss_mb_max"],
            TARGETS["worker_rss_max_mb"],
            setup["worker_rss_mb_max"] <= TARGETS["worker_rss_max_mb"],
        )
        g = setup["supervisor_growth_per_meeting_mb"]
        add(
            "supervisor growth per meeting MB",
            g,
            TARGETS["growth_per_meeting_max_mb"],
            g <= TARGETS["growth_per_meeting_max_mb"],
        )
    ours, ref = result.get("appliance"), result.get("gofanout")
    if isinstance(ours, dict) and "error" not in ours:
        v = ours["verdict"]
        window = ours["window_ms"]
        lat = ours["latency_ms"] or {}
        add(
            "drops (client notices + server count, window)",
            v["drops"],
            0,
            v["drops"] == 0,
        )
        if window > 0:
            add(
                "latency p99 ms (capture stamp, oldest byte)",
                lat.get("p99"),
                window + 20,
                lat.get("p99") is not None and lat["p99"] <= window + 20,
            )
            add(
                "supervisor RSS MB",
                ours["server_rss_mb"],
                TARGETS["server_rss_max_mb"],
                (ours["server_rss_mb"] or 1e9) <= TARGETS["server_rss_max_mb"],
            )
            if ref and "error" not in ref:
                r = result["ratios"]["server_cpu"]
                add(
                    "supervisor CPU / reference CPU",
                    r,
                    TARGETS["cpu_ratio_max"],
                    r is not None and r <= TARGETS["cpu_ratio_max"],
                )
        else:
            add(
                "latency p50 ms (window 0)",
                lat.get("p50"),
                TARGETS["window0_p50_ms"],
                lat.get("p50") is not None and lat["p50"] <= TARGETS["window0_p50_ms"],
            )
            add(
                "latency p99 ms (window 0)",
                lat.get("p99"),
                TARGETS["window0_p99_ms"],
                lat.get("p99") is not None and lat["p99"] <= TARGETS["window0_p99_ms"],
            )
    if result.get("mode") == "knee" and result.get("gofanout"):
        add(
            "knee clients (appliance vs reference)",
            result["appliance_knee"],
            result["gofanout_knee"],
            result["appliance_knee"] >= result["gofanout_knee"],
        )
    share = result.get("share")
    if share:
        add(
            "share frames/s at the supervisor",
            share["frames_per_s"],
            TARGETS["share_min_fps"],
            share["frames_per_s"] >= TARGETS["share_min_fps"],
        )
        if share.get("plugin"):
            rate = share.get("plugin_frames_per_s")
            add(
                "share frames/s at the no-op plugin",
                rate,
                TARGETS["share_min_fps"],
                rate is not None and rate >= TARGETS["share_min_fps"],
            )
    return out


# ----------------------------------------------------------------- printing


def _f(v, nd=1, unit=""):
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:,.{nd}f}{unit}"
    return f"{v:,}{unit}"


def _trio(d):
    return "n/a" if not d else f"{d['p50']:.1f} / {d['p99']:.1f} / {d['max']:.1f}"


def knee_line(r: dict) -> str:
    if "error" in r:
        return f"{r.get('clients', '?')} clients: {r['error']}"
    v = r["verdict"]
    lat = r["latency_ms"] or r["lag_oldest_ms"] or {}
    return (
        f"{r['clients']} clients: {'PASS' if v['pass'] else 'FAIL'}  delivered "
        f"{100 * (r['delivered_ratio'] or 0):.2f}%  drops {v['drops']}  p99 "
        f"{_f(lat.get('p99'))} ms ({v['latency_source']})  lag-oldest p99 "
        f"{_f((r['lag_oldest_ms'] or {}).get('p99'))} ms  server CPU "
        f"{_f(r['server_cpu_pct'])}%  clients CPU {_f(r['clients_cpu_pct'])}%"
        f"{'  [cores full]' if r['cpu_saturated'] else ''}"
    )


def print_load(result: dict) -> None:
    ours, ref, rat = (
        result.get("appliance") or {},
        result.get("gofanout") or {},
        result.get("ratios") or {},
    )
    rows = [
        (
            "clients connected",
            "connect",
            lambda r: f"{r['connect']['connected']}/{r['clients']}",
            None,
        ),
        (
            "permessage-deflate negotiated",
            "connect",
            lambda r: str(r["connect"]["deflate_negotiated"]),
            None,
        ),
        (
            "frames delivered / expected",
            "frames",
            lambda r: (
                f"{r['frames']:,} / {_f(r['expected_frames'])} "
                f"({100 * (r['delivered_ratio'] or 0):.2f}%)"
            ),
            None,
        ),
        (
            "worst client delivered",
            "worst_client_ratio",
            lambda r: _f(100 * (r["worst_client_ratio"] or 0), 2, "%"),
            None,
        ),
        ("messages delivered", "messages", lambda r: f"{r['messages']:,}", None),
        ("PCM bytes delivered", "pcm_bytes", lambda r: f"{r['pcm_bytes']:,}", None),
        (
            "drops: client notices (frames)",
            "dropped_frames_notified_in_window",
            lambda r: _f(r["dropped_frames_notified_in_window"]),
            None,
        ),
        (
            "drops: server count (frames)",
            "server_dropped_frames_in_window",
            lambda r: _f(r["server_dropped_frames_in_window"]),
            None,
        ),
        (
            "stamp gaps (frames missing)",
            "stamp_gaps",
            lambda r: _f(r["stamp_gaps"]),
            None,
        ),
        (
            "latency ms, stamp p50/p99/max",
            "latency_ms",
            lambda r: _trio(r["latency_ms"]),
            None,
        ),
        (
            "lag ms newest byte p50/p99/max",
            "lag_ms",
            lambda r: _trio(r["lag_ms"]),
            "lag_p99",
        ),
        (
            "lag ms oldest byte p50/p99/max",
            "lag_oldest_ms",
            lambda r: _trio(r["lag_oldest_ms"]),
            "lag_oldest_p99",
        ),
        (
            "server CPU % of a core",
            "server_cpu_pct",
            lambda r: _f(r["server_cpu_pct"]),
            "server_cpu",
        ),
        (
            "server CPU us per message",
            "server_cpu_us_per_message",
            lambda r: _f(r["server_cpu_us_per_message"], 2),
            "cpu_per_message",
        ),
        (
            "server RSS MB (peak)",
            "server_rss_mb",
            lambda r: f"{_f(r['server_rss_mb'])} ({_f(r['server_peak_rss_mb'])})",
            None,
        ),
        (
            "server RSS KB per client",
            "server_rss_per_client_kb",
            lambda r: _f(r["server_rss_per_client_kb"]),
            "rss_per_client",
        ),
        (
            "server RSS growth KB per client",
            "server_rss_growth_per_client_kb",
            lambda r: _f(r["server_rss_growth_per_client_kb"]),
            "rss_growth_per_client",
        ),
        (
            "workers CPU % (sum)",
            "workers_cpu_pct",
            lambda r: _f(r["workers_cpu_pct"]),
            None,
        ),
        (
            "worker RSS MB max / mean",
            "worker_rss_mb_max",
            lambda r: (
                f"{_f(r['worker_rss_mb_max'])} / {_f(r['worker_rss_mb_mean'])}"
                if r["workers"]
                else "n/a"
            ),
            None,
        ),
        (
            "client CPU % (per proc)",
            "clients_cpu_pct",
            lambda r: f"{_f(r['clients_cpu_pct'])} {r['client_cpu_pct_per_proc']}",
            None,
        ),
        (
            "other processes CPU %",
            "other_processes_cpu_pct",
            lambda r: _f(r["other_processes_cpu_pct"]),
            None,
        ),
        (
            "machine busy % (200 = all)",
            "machine_busy_pct",
            lambda r: _f(r["machine_busy_pct"]),
            None,
        ),
    ]
    m = ours or ref
    print()
    print(
        f"load: {m.get('meetings')} meetings x {m.get('clients_per_meeting')} clients "
        f"(type={m.get('type')}), window {_f(m.get('window_ms'), 0)} ms, measured "
        f"{_f(m.get('duration_s'), 0)} s, {m.get('client_procs')} client proc(s) on "
        f"{m.get('client_loop')}"
    )
    print(f"{'':34}{'appliance':>30}{'gofanout (Go)':>30}{'ratio':>8}")
    for label, key, fmt, ratio_key in rows:
        a = (
            fmt(ours)
            if ours and "error" not in ours and key in ours
            else ("n/a" if not ours else ours.get("error", "n/a"))
        )
        b = (
            fmt(ref)
            if ref and "error" not in ref and key in ref
            else ("n/a" if not ref else ref.get("error", "n/a"))
        )
        c = _f(rat.get(ratio_key), 2) if ratio_key and rat else ""
        print(f"{label:34}{a:>30}{b:>30}{c:>8}")
    for name, r in (("appliance", ours), ("gofanout", ref)):
        if not r or "error" in r:
            continue
        ps = r["per_second"]
        print(
            f"{name} server CPU %/s:  "
            + " ".join(f"{s['server_cpu_pct']:.0f}" for s in ps)
        )
        if r["workers"]:
            print(
                f"{name} workers CPU %/s: "
                + " ".join(f"{s['workers_cpu_pct']:.0f}" for s in ps)
            )
        print(
            f"{name} server RSS MB/s:  "
            + " ".join(f"{s['server_rss_mb']:.0f}" for s in ps)
        )
        print(
            f"{name} clients CPU %/s: "
            + " ".join(f"{s['clients_cpu_pct']:.0f}" for s in ps)
        )
        print(
            f"{name} worst latency ms/s: "
            + " ".join(f"{s.get('worst_latency_ms', 0):.0f}" for s in ps)
        )
        v = r["verdict"]
        print(
            f"{name} verdict: {'PASS' if v['pass'] else 'FAIL'} (drops {v['drops']}, "
            "p99 by "
            f"{v['latency_source']} <= {v['limit_ms']:g} ms: {v['p99_ok']}; "
            "like-for-like "
            f"lag rule: {'pass' if v['pass_like_for_like'] else 'fail'})"
            f"{'  CAUTION: cores full' if r['cpu_saturated'] else ''}"
        )
        if r["client_errors"]:
            print(
                f"{name} client errors: {r['client_errors']}, e.g. "
                f"{r['client_error_sample']}"
            )


def print_setup(setup: dict) -> None:
    j, s = setup["post_to_inmeeting_ms"], setup["join_ms_server"]
    print()
    print(
        f"appliance: POST->INMEETING ms p50/p99/max {_trio(j)} (as polled; the "
        "appliance's "
        f"join_ms: {_trio(s)}), {j['n'] if j else 0} meetings one after another"
    )
    print(
        f"appliance: supervisor RSS {setup['supervisor_rss_no_meetings_mb']} MB with "
        "no meeting, "
        f"{setup['supervisor_rss_one_meeting_mb']} MB with one, "
        f"{setup['supervisor_rss_meetings_mb']} "
        f"MB with {setup['workers']}: growth "
        f"{setup['supervisor_growth_per_meeting_mb']} MB per meeting "
        f"({_f(setup['supervisor_growth_per_meeting_after_first_mb'], 2)} MB after "
        "the first)"
    )
    print(
        f"appliance: sim worker RSS MB max {setup['worker_rss_mb_max']}, mean "
        f"{setup['worker_rss_mb_mean']}"
        f" (in meetings); spare workers {setup['spare_workers']}: "
        f"{setup['spare_worker_rss_mb']} MB"
    )


def print_profile(profile: dict) -> None:
    print()
    if "error" in profile:
        print(f"profile: {profile['error']}")
        return
    print(
        f"profile of the supervisor (py-spy, {profile['samples']} samples; raw "
        "stacks in "
        f"{profile.get('raw_path')})"
    )
    print("  self time by function:")
    for name, pct in profile["self_by_function"][:15]:
        print(f"    {pct:5.1f}%  {name}")
    print("  inclusive time by function:")
    for name, pct in profile["inclusive_by_function"][:20]:
        print(f"    {pct:5.1f}%  {name}")
    print("  self time by file:")
    for name, pct in profile["self_by_file"][:10]:
        print(f"    {pct:5.1f}%  {name}")


def print_knee(result: dict) -> None:
    print()
    for name in ("appliance", "gofanout"):
        for r in result.get(name, []):
            print(f"knee {name:10} {knee_line(r)}")
    print(
        f"knee: appliance {result.get('appliance_knee')} clients, gofanout "
        f"{result.get('gofanout_knee')} clients (largest passing step of "
        f"{result['steps']} per meeting; like-for-like lag rule: appliance "
        f"{result.get('appliance_knee_like_for_like')})"
    )


def print_share(share: dict) -> None:
    print()
    print(
        f"share: {share['meetings']} x {share['width']}x{share['height']} I420 at "
        f"{share['fps_per_meeting']:g} fps (offered "
        f"{share['offered_frames_per_s']:g}/s), "
        f"to the {share['delivered_to']}"
    )
    print(
        f"  frames/s received {share['frames_per_s']} ({share['megabytes_per_s']} "
        "MB/s), "
        f"worker drops {share['worker_dropped_frames']}"
    )
    print(
        f"  supervisor CPU {share['server_cpu_pct']}% "
        f"({_f(share['server_cpu_ms_per_frame'], 2)} ms "
        f"per frame), RSS {share['server_rss_mb']} MB (peak "
        f"{share['server_peak_rss_mb']}); "
        f"workers CPU {share['workers_cpu_pct']}%, worker RSS max "
        f"{share['worker_rss_mb_max']} MB"
    )
    if share.get("plugin"):
        print(
            f"  no-op plugin {share['plugin']}: {_f(share['plugin_frames'])} frames, "
            f"{_f(share['plugin_frames_per_s'])}/s"
        )
    print(
        "  frames/s each second: "
        + " ".join(f"{s['frames_per_s']:.0f}" for s in share["per_second"])
    )


def print_checks(items: list[dict]) -> None:
    if not items:
        return
    print()
    print("issue 5 figures:")
    for c in items:
        print(
            f"  [{'met ' if c['met'] else 'MISS'}] {c['figure']}: "
            f"{_f(c['value'], 2)} (limit {_f(c['limit'], 2)})"
        )


def wait_for_quiet(max_wait: float, threshold_pct: float = 10.0) -> float:
    """Wait (bounded) until the machine is nearly idle; the last load seen, % of all."""
    deadline = time.monotonic() + max(0.0, max_wait)
    load = 0.0
    for _ in range(1000):
        a, t = procstat.machine_busy_seconds(), time.monotonic()
        time.sleep(2.0)
        busy = procstat.machine_busy_seconds() - a
        load = 100 * busy / (time.monotonic() - t) / (os.cpu_count() or 1)
        if load < threshold_pct or time.monotonic() >= deadline:
            break
    print(
        f"bench: background load before the run: {load:.1f}% of all cores", flush=True
    )
    return round(load, 1)


def main(argv=None) -> int:
    args = parse_args(argv)
    out_dir = Path(args.out_dir or tempfile.mkdtemp(prefix="bench-out-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    background = wait_for_quiet(args.quiet_wait)
    if args.share:
        result = mode_share(args, out_dir)
    elif args.knee:
        result = mode_knee(args, out_dir)
    else:
        result = mode_load(args, out_dir)
    result["checks"] = checks(result, args)
    result["machine"] = {
        "cores": os.cpu_count(),
        "python": sys.version.split()[0],
        "uvloop": has_uvloop(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
        "wall_s": round(time.time() - started, 1),
        "background_load_before_pct": background,
        "argv": sys.argv[1:] if argv is None else list(argv),
    }
    if result.get("appliance_setup"):
        print_setup(result["appliance_setup"])
    if result["mode"] == "load":
        print_load(result)
        if result.get("profile"):
            print_profile(result["profile"])
    elif result["mode"] == "knee":
        print_knee(result)
    else:
        print_share(result["share"])
    print_checks(result["checks"])
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=1, default=list))
        print(f"\nJSON: {args.json_out}")
    return 0
