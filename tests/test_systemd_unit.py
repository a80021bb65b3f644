"""The systemd files: the unit passes ``systemd-analyze verify`` and says what the
appliance needs; the environment template covers every setting; install.sh lays out
a root (``--root``, no systemctl) and takes it away again.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from appliance.config import Settings
from appliance.plugins.manager import FINALISE_TIMEOUT
from appliance.supervisor.workers import TERMINATE_GRACE

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "systemd" / "headless-meeting-bot.service"
ENV_TEMPLATE = ROOT / "systemd" / "headless-meeting-bot.env"
INSTALL = ROOT / "systemd" / "install.sh"
EXEC_START = "/opt/headless-meeting-bot/headless-meeting-bot"


def directives(path: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


def seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+)(s|min)?", value)
    assert match, value
    return int(match.group(1)) * (60 if match.group(2) == "min" else 1)


def stub_binary(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('#!/bin/sh\n[ "$1" = --version ] && echo 0.0-stub\nexit 0\n')
    path.chmod(0o755)
    return path


def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (apt-get install systemd)")
    # verify checks that ExecStart's program exists: point it at a stub.
    binary = stub_binary(tmp_path / "bin" / "headless-meeting-bot")
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text().replace(EXEC_START, str(binary)))
    done = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    output = done.stdout + done.stderr
    print(f"systemd-analyze verify: exit {done.returncode}\n{output}")
    assert done.returncode == 0, output
    assert UNIT.name not in output, output


def test_the_unit_says_what_the_appliance_needs() -> None:
    unit = directives(UNIT)
    assert unit["Type"] == ["notify"]
    # Python runs in the bootloader's child in the one-file binary.
    assert unit["NotifyAccess"] == ["all"]
    assert seconds(unit["WatchdogSec"][0]) >= 10
    assert unit["ExecStart"] == [f"{EXEC_START} serve"]
    assert unit["EnvironmentFile"] == ["/etc/headless-meeting-bot/env"]
    assert unit["DynamicUser"] == ["yes"]
    assert unit["StateDirectory"] == ["headless-meeting-bot"]
    assert unit["RuntimeDirectory"] == ["headless-meeting-bot"]
    for name in ("ProtectHome", "PrivateTmp", "NoNewPrivileges"):
        assert unit[name] == ["yes"], name
    assert unit["ProtectSystem"] == ["strict"]
    assert "MemoryDenyWriteExecute" not in unit
    assert unit["KillMode"] == ["mixed"]
    # A stop must leave room for every step of the supervisor's shutdown.
    defaults = Settings()
    shutdown = (
        defaults.leave_timeout
        + TERMINATE_GRACE
        + defaults.plugin_drain_timeout
        + FINALISE_TIMEOUT
    )
    assert seconds(unit["TimeoutStopSec"][0]) >= shutdown + 10


def appliance_settings() -> set[str]:
    """Every environment variable the appliance reads, from its source."""
    names = {"ZOOM_SDK_KEY", "ZOOM_SDK_SECRET", "HMB_PLUGIN_PATH"}
    source = (ROOT / "appliance" / "config.py").read_text()
    names |= set(re.findall(r'"((?:HMB|HTTP|LOG)_[A-Z_]*[A-Z])"', source))
    # HMB_PLUGIN_ is a prefix (HMB_PLUGIN_<NAME>_<KEY>), shown by an example.
    names.discard("HMB_PLUGIN")
    return names


def test_the_env_template_names_every_setting_commented_out() -> None:
    text = ENV_TEMPLATE.read_text()
    commented = set(re.findall(r"^#([A-Z][A-Z0-9_]*)=", text, re.MULTILINE))
    missing = appliance_settings() - commented
    assert not missing, missing
    assert re.search(r"^#HMB_PLUGIN_[A-Z_]+=", text, re.MULTILINE)
    # Nothing is set by the template itself: the appliance's defaults apply.
    active = [
        line
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert active == []


def run_install(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(INSTALL), *args], capture_output=True, text=True, timeout=60
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_install_script_lays_out_and_removes_a_root(tmp_path: Path) -> None:
    binary = stub_binary(tmp_path / "dist" / "headless-meeting-bot")
    root = tmp_path / "root"
    done = run_install("--root", str(root), str(binary))
    assert done.returncode == 0, done.stderr
    installed = root / "opt/headless-meeting-bot/headless-meeting-bot"
    env = root / "etc/headless-meeting-bot/env"
    unit = root / "etc/systemd/system/headless-meeting-bot.service"
    link = root / "usr/local/bin/headless-meeting-bot"
    assert installed.read_bytes() == binary.read_bytes()
    assert mode(installed) == 0o755
    assert (root / "opt/headless-meeting-bot/plugins").is_dir()
    assert os.readlink(link) == EXEC_START
    assert env.read_text() == ENV_TEMPLATE.read_text()
    assert mode(env) == 0o600
    assert unit.read_text() == UNIT.read_text()
    assert "not enabled or started" in done.stdout

    # An upgrade replaces the binary and the unit, never the operator's settings.
    env.write_text("HMB_DRIVER=zoom\n")
    binary.write_text(binary.read_text() + "# v2\n")
    done = run_install("--root", str(root), str(binary))
    assert done.returncode == 0, done.stderr
    assert "kept" in done.stdout
    assert env.read_text() == "HMB_DRIVER=zoom\n"
    assert installed.read_text().endswith("# v2\n")

    (root / "var/lib/headless-meeting-bot").mkdir(parents=True)
    done = run_install("--root", str(root), "--uninstall")
    assert done.returncode == 0, done.stderr
    assert not installed.exists() and not unit.exists() and not link.exists()
    assert env.exists()
    assert (root / "var/lib/headless-meeting-bot").exists()

    done = run_install("--root", str(root), "--uninstall", "--purge")
    assert done.returncode == 0, done.stderr
    assert not env.parent.exists()
    assert not (root / "opt/headless-meeting-bot").exists()
    assert not (root / "var/lib/headless-meeting-bot").exists()


def test_install_script_refuses_without_a_binary(tmp_path: Path) -> None:
    done = run_install("--root", str(tmp_path / "root"), str(tmp_path / "nothing"))
    assert done.returncode == 1
    assert "packaging/build.sh" in done.stderr
