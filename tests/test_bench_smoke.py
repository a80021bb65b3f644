"""The harness end to end on a tiny load (appliance only, no figures asserted)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_bench_runs_end_to_end(tmp_path):
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--workload",
            "custom",
            "--meetings",
            "1",
            "--clients",
            "2",
            "--window-ms",
            "100",
            "--duration",
            "2",
            "--warmup",
            "0.5",
            "--no-reference",
            "--quiet-wait",
            "0",
            "--json-out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "issue 5 figures:" in result.stdout
    data = json.loads(out.read_text())
    ours = data["appliance"]
    assert ours["connect"]["connected"] == 2
    assert ours["connect"]["deflate_negotiated"] == 0
    assert ours["frames"] > 0
    assert ours["latency_ms"]["n"] > 0
    assert ours["stamp_gaps"] == 0
    assert data["appliance_setup"]["post_to_inmeeting_ms"]["n"] == 1
    assert {c["figure"] for c in data["checks"]} >= {"POST to INMEETING p50 ms"}
