"""CPU and memory of processes, read from ``/proc`` (Linux only).

CPU is ``utime + stime`` from ``/proc/PID/stat`` in seconds; memory is ``VmRSS`` and
``VmHWM`` from ``/proc/PID/status`` in MB (10**6 bytes). A process that is gone reads
as ``None`` (or is skipped in sums), never as an error.
"""

from __future__ import annotations

import os
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
PROC = Path("/proc")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may itself hold spaces or ")".
    return raw[raw.rfind(")") + 2 :].split()


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time of ``pid`` so far, in seconds."""
    fields = _stat_fields(pid)
    if fields is None:
        return None
    # After the name: state(3) ppid(4) ... utime(14) stime(15), 1-based in proc(5).
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def parent_pid(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return None if fields is None else int(fields[1])


def memory_mb(pid: int) -> tuple[float, float] | None:
    """``(rss, peak rss)`` of ``pid`` in MB."""
    try:
        text = (PROC / str(pid) / "status").read_text()
    except OSError:
        return None
    values = {}
    for line in text.splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            name, value = line.split(":", 1)
            values[name] = int(value.split()[0]) * 1024 / 1e6
    if "VmRSS" not in values:
        return None  # a zombie
    return values["VmRSS"], values.get("VmHWM", values["VmRSS"])


def rss_mb(pid: int) -> float | None:
    mem = memory_mb(pid)
    return None if mem is None else mem[0]


def all_pids() -> list[int]:
    return [int(p.name) for p in PROC.iterdir() if p.name.isdigit()]


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (one scan of ``/proc``)."""
    return [p for p in all_pids() if p != pid and parent_pid(p) == pid]


def cpu_sum(pids: list[int]) -> float:
    """Total CPU seconds of ``pids``; a process that is gone counts 0."""
    return sum(cpu_seconds(p) or 0.0 for p in pids)


def all_cpu() -> dict[int, float]:
    """CPU seconds of every process on the machine, by pid."""
    out = {}
    for pid in all_pids():
        value = cpu_seconds(pid)
        if value is not None:
            out[pid] = value
    return out


def others_cpu(
    before: dict[int, float], after: dict[int, float], ours: set[int]
) -> float:
    """CPU seconds used between two :func:`all_cpu` scans by processes not in ``ours``.

    A process born in between counts whole; one that died in between is missed.
    """
    return sum(v - before.get(p, 0.0) for p, v in after.items() if p not in ours)


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (all cores), from ``/proc/stat``."""
    values = [
        int(x) for x in PROC.joinpath("stat").read_text().split("\n", 1)[0].split()[1:9]
    ]
    return (sum(values) - values[3] - values[4]) / CLK_TCK
