"""Sampling the supervisor with py-spy while the load runs, and reading its output.

``py-spy record --format raw`` writes collapsed stacks (``frame;frame;... count``, the
input of flamegraph.pl and inferno); :func:`summarize_collapsed` turns them into the
functions and files that take the time, as percentages of the samples (py-spy samples
only threads that are running, so these are shares of the supervisor's CPU time).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

_LINE = re.compile(r"^(.*) (\d+)$")
_FRAME = re.compile(r"^(.*?) \((.*?)(?::\d+)?\)$")


def py_spy_path() -> str | None:
    local = Path(sys.executable).with_name("py-spy")
    return str(local) if local.exists() else shutil.which("py-spy")


class PySpy:
    """One ``py-spy record`` of a process for a bounded time."""

    def __init__(
        self, out_dir: Path, seconds: float, rate: int = 100, native: bool = False
    ):
        self.out_dir = out_dir
        self.seconds = max(1, int(seconds))
        self.rate = rate
        self.native = native
        self.raw_path: Path | None = None
        self.summary: dict | None = None
        self.error: str | None = None

    def start(self, server):
        exe = py_spy_path()
        if exe is None:
            self.error = "py-spy not installed (pip install py-spy, or the bench extra)"
            return None
        self.raw_path = self.out_dir / f"profile-{server.name}-{server.pid}.txt"
        log = open(self.out_dir / "py-spy.log", "ab")  # noqa: SIM115 (closed by finish)
        command = [
            exe,
            "record",
            "--pid",
            str(server.pid),
            "--duration",
            str(self.seconds),
            "--rate",
            str(self.rate),
            "--format",
            "raw",
            "--output",
            str(self.raw_path),
        ]
        if self.native:
            command.append("--native")
        proc = subprocess.Popen(
            command, stdout=log, stderr=log, stdin=subprocess.DEVNULL
        )

        def finish() -> None:
            try:
                proc.wait(timeout=self.seconds + 60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
            log.close()
            if self.raw_path.exists():
                self.summary = summarize_collapsed(self.raw_path.read_text())
                self.summary["raw_path"] = str(self.raw_path)
            else:
                self.error = f"py-spy wrote nothing; see {self.out_dir / 'py-spy.log'}"

        return finish


def _function(frame: str) -> tuple[str, str]:
    match = _FRAME.match(frame.strip())
    if not match:
        return frame.strip(), ""
    name, where = match.groups()
    return name, where


def summarize_collapsed(text: str, top: int = 20) -> dict:
    """Self and inclusive shares by function, and self shares by file."""
    self_fn: Counter = Counter()
    incl_fn: Counter = Counter()
    self_file: Counter = Counter()
    total = 0
    for line in text.splitlines():
        match = _LINE.match(line.strip())
        if not match:
            continue
        stack, count = match.group(1), int(match.group(2))
        frames = [f for f in stack.split(";") if f]
        # py-spy puts the process and thread first; real frames have "(file:line)".
        frames = [f for f in frames if "(" in f and ")" in f] or frames
        if not frames:
            continue
        total += count
        leaf_name, leaf_file = _function(frames[-1])
        self_fn[f"{leaf_name} ({_short(leaf_file)})"] += count
        self_file[_short(leaf_file)] += count
        seen = set()
        for frame in frames:
            name, where = _function(frame)
            key = f"{name} ({_short(where)})"
            if key not in seen:
                seen.add(key)
                incl_fn[key] += count

    def pct(counter: Counter) -> list[list]:
        return (
            [[key, round(100 * n / total, 1)] for key, n in counter.most_common(top)]
            if total
            else []
        )

    return {
        "samples": total,
        "self_by_function": pct(self_fn),
        "inclusive_by_function": pct(incl_fn),
        "self_by_file": pct(self_file),
    }


def _short(path: str) -> str:
    """A file name short enough to read: from the package folder on."""
    for marker in ("site-packages/", "/appliance/", "lib/python3"):
        index = path.find(marker)
        if index >= 0:
            tail = path[index + len(marker) :]
            return ("appliance/" + tail) if marker == "/appliance/" else tail
    return path.rsplit("/", 2)[-1] if "/" in path else path
