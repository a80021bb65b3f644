"""The unit under a real systemd: a container booted with systemd-nspawn.

Slow, and only where it can run: as root, with ``systemd-nspawn`` (Debian's
``systemd-container``), ``/usr/bin/python3`` and a merged ``/usr`` host. The container
is this host's own ``/usr`` (bound read-only) with a copy of its ``/etc``, a release
folder (``systemd/`` and the binary built by ``tests/test_packaging.py``) and a
drop-in that shortens the watchdog to 4 s so the test need not wait 30 s. systemd
boots, and a oneshot service in the container (:data:`CHECK`) drives the real unit:

1. ``install.sh`` installs, enables and starts it with the real systemctl: ``active``
   only after ``READY=1`` (its ``STATUS=``), as a dynamic user;
2. a sim meeting with the recorder, ``INMEETING``;
3. stop: the meeting is left, the recording finalised, exit status 0, no process left;
4. watchdog: Python (the bootloader's child) frozen with SIGSTOP, systemd kills the
   service for its watchdog and restarts it;
5. ``install.sh --uninstall`` stops it and removes the unit;

writes what it saw to ``/results/result.json`` and powers off.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from tests.test_packaging import built_binary

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
NSPAWN_TIMEOUT_S = 240

CHECK = r"""
import json, os, signal, subprocess, time, urllib.request

UNIT = "headless-meeting-bot.service"
result = {}

def show(*props):
    out = subprocess.run(["systemctl", "show", UNIT, *(f"-p{p}" for p in props)],
                         capture_output=True, text=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

def get(path, data=None):
    request = urllib.request.Request("http://127.0.0.1:8080" + path, data=data)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())

def processes():
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ")
        except OSError:
            continue
        if b"headless-meeting-bot" in cmd or b"pulseaudio" in cmd:
            found.append(cmd.decode(errors="replace"))
    return found

try:
    install = subprocess.run(["/opt/release/install.sh"], capture_output=True,
                             text=True)
    result["install"] = [install.returncode, install.stdout + install.stderr]
    result["enabled"] = subprocess.run(["systemctl", "is-enabled", UNIT],
                                       capture_output=True, text=True).stdout.strip()
    result["started"] = show("ActiveState", "SubState", "StatusText", "NotifyAccess",
                             "WatchdogUSec", "User", "DynamicUser", "MainPID",
                             "LimitMEMLOCK", "LimitNOFILE")
    result["health"] = get("/health")
    get("/api/meetings", json.dumps({"meeting_id": "1234567890"}).encode())
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        result["meeting"] = get("/api/meetings/1234567890")["status"]
        if result["meeting"] == "MEETING_STATUS_INMEETING":
            break
        time.sleep(0.05)
    time.sleep(2)
    main = int(result["started"]["MainPID"])
    result["tree"] = processes()
    subprocess.run(["systemctl", "stop", UNIT])
    result["stopped"] = show("ActiveState", "Result", "ExecMainStatus")
    result["left_after_stop"] = processes()
    base = "/var/lib/private/headless-meeting-bot/recordings/1234567890"
    result["recordings"] = {
        name: os.path.getsize(os.path.join(base, run, name))
        for run in os.listdir(base) for name in os.listdir(os.path.join(base, run))
    }

    subprocess.run(["systemctl", "start", UNIT])
    main = int(show("MainPID")["MainPID"])
    child = int(open(f"/proc/{main}/task/{main}/children").read().split()[0])
    os.kill(child, signal.SIGSTOP)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = show("NRestarts", "ActiveState", "SubState", "MainPID")
        if state["NRestarts"] == "1" and state["SubState"] == "running":
            break
        time.sleep(0.5)
    result["after_watchdog"] = state
    result["journal"] = subprocess.run(
        ["journalctl", "-u", UNIT, "--no-pager", "-o", "cat"],
        capture_output=True, text=True).stdout[-20000:]
    uninstall = subprocess.run(["/opt/release/install.sh", "--uninstall"],
                               capture_output=True, text=True)
    result["uninstall"] = [uninstall.returncode, uninstall.stdout + uninstall.stderr]
    result["after_uninstall"] = show("ActiveState", "LoadState")
    result["left_at_end"] = processes()
except Exception as exc:
    result["error"] = repr(exc)
finally:
    with open("/results/result.json", "w") as out:
        json.dump(result, out, indent=1)
    subprocess.run(["systemctl", "poweroff", "--no-block"])
"""

CHECK_UNIT = """\
[Unit]
Description=Drive headless-meeting-bot.service under systemd (test)
After=multi-user.target

[Service]
Type=oneshot
ExecStart=/usr/bin/python3 /etc/hmb-check/check.py
"""

DROP_IN = """\
[Service]
# The test's only change to the unit: a watchdog it can wait for.
WatchdogSec=4s
RestartSec=1s
"""


def can_boot() -> str | None:
    """Why systemd-nspawn cannot boot a container here (None if it can)."""
    if os.geteuid() != 0:
        return "needs root"
    if shutil.which("systemd-nspawn") is None:
        return "systemd-nspawn is not installed (apt-get install systemd-container)"
    if not Path("/usr/bin/python3").exists():
        return "no /usr/bin/python3 for the check inside the container"
    if not all(Path(f"/{name}").is_symlink() for name in ("bin", "lib", "sbin")):
        return "the host's /usr is not merged; the container borrows it"
    return None


def make_root(root: Path, binary: Path) -> None:
    """A container root: this host's /etc copied, its /usr bound later."""
    for name in ("usr", "dev", "proc", "sys", "run", "tmp", "var", "root", "results"):
        (root / name).mkdir(parents=True)
    for name in ("bin", "lib", "lib64", "sbin"):
        if Path(f"/{name}").is_symlink():
            (root / name).symlink_to(os.readlink(f"/{name}"))
    subprocess.run(["cp", "-a", "/etc", str(root / "etc")], check=True)
    release = root / "opt" / "release"
    shutil.copytree(ROOT / "systemd", release)
    shutil.copy2(binary, release / "headless-meeting-bot")
    system = root / "etc" / "systemd" / "system"
    # Only what the test needs starts: none of the host's own services.
    for wants in system.glob("*.wants"):
        shutil.rmtree(wants)
    (root / "etc" / "machine-id").write_text("")
    # The operator's settings, written before install.sh (which keeps them).
    env = root / "etc" / "headless-meeting-bot" / "env"
    env.parent.mkdir()
    env.write_text("HTTP_ADDR=127.0.0.1:8080\nHMB_PLUGINS=recorder\n")
    env.chmod(0o600)
    drop_in = system / "headless-meeting-bot.service.d"
    drop_in.mkdir()
    (drop_in / "test.conf").write_text(DROP_IN)
    (root / "etc" / "hmb-check").mkdir()
    (root / "etc" / "hmb-check" / "check.py").write_text(textwrap.dedent(CHECK))
    (system / "hmb-check.service").write_text(CHECK_UNIT)
    wants = system / "multi-user.target.wants"
    wants.mkdir()
    (wants / "hmb-check.service").symlink_to("/etc/systemd/system/hmb-check.service")
    (system / "default.target").unlink(missing_ok=True)
    (system / "default.target").symlink_to("/lib/systemd/system/multi-user.target")


def boot(root: Path) -> str:
    """Bind /usr, boot the container until the check powers it off; its console."""
    usr = root / "usr"
    subprocess.run(["mount", "--bind", "/usr", str(usr)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(usr)], check=True)
        done = subprocess.run(
            [
                "systemd-nspawn",
                "--directory",
                str(root),
                "--boot",
                # Not registered with (or scoped by) a host systemd, which may not
                # be running: the container's cgroup is this test's own.
                "--register=no",
                "--keep-unit",
                "--console=pipe",
                f"--bind={root / 'results'}:/results",
                # install.sh links /usr/local/bin/headless-meeting-bot; /usr is the
                # host's, read-only.
                "--tmpfs=/usr/local/bin",
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=NSPAWN_TIMEOUT_S,
        )
    finally:
        subprocess.run(["umount", str(usr)], check=False)
    return done.stdout + done.stderr


def test_the_unit_under_systemd(tmp_path: Path) -> None:
    why = can_boot()
    if why:
        pytest.skip(why)
    binary = built_binary()
    root = tmp_path / "root"
    make_root(root, binary)
    console = boot(root)
    result_path = root / "results" / "result.json"
    assert result_path.exists(), console[-5000:]
    result = json.loads(result_path.read_text())
    print(json.dumps({k: v for k, v in result.items() if k != "journal"}, indent=1))
    assert "error" not in result, (result, console[-3000:])

    started = result["started"]
    assert result["install"][0] == 0, result["install"][1]
    assert "kept /etc/headless-meeting-bot/env" in result["install"][1]
    assert result["enabled"] == "enabled"
    assert started["ActiveState"] == "active"
    # Type=notify: the STATUS= sent with READY=1 shows it came from the app.
    assert started["StatusText"] == "serving on port 8080"
    assert started["DynamicUser"] == "yes"
    assert result["health"]["status"] == "ok"
    assert result["meeting"] == "MEETING_STATUS_INMEETING"
    assert any(" worker " in cmd for cmd in result["tree"]), result["tree"]

    assert result["stopped"] == {
        "ActiveState": "inactive",
        "Result": "success",
        "ExecMainStatus": "0",
    }
    assert result["left_after_stop"] == []
    assert result["recordings"]["mixed.wav"] > 44

    assert result["after_watchdog"]["NRestarts"] == "1", result["journal"][-3000:]
    assert "Watchdog timeout" in result["journal"]
    assert result["uninstall"][0] == 0, result["uninstall"][1]
    assert result["after_uninstall"] == {
        "ActiveState": "inactive",
        "LoadState": "not-found",
    }
    assert result["left_at_end"] == []
