"""``headless-meeting-bot doctor``: each check on a host made good or bad on purpose."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from appliance import cli, doctor
from appliance.doctor import FAIL, OK, WARN


def base_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HMB_", "ZOOM_SDK_", "PULSE_", "RUNTIME_DIRECTORY"))
    }
    env.update(
        HTTP_ADDR="127.0.0.1:0", HMB_DATA_DIR=str(tmp_path / "data"), HMB_DRIVER="sim"
    )
    env.update(extra)
    return env


def by_name(checks: list[doctor.Check]) -> dict[str, doctor.Check]:
    return {check.name: check for check in checks}


def run(env: dict[str, str], **kwargs) -> dict[str, doctor.Check]:
    return by_name(doctor.run_checks(env, probe=False, plugin_path=[], **kwargs))


def test_a_good_sim_host_passes_every_check(tmp_path: Path) -> None:
    checks = doctor.run_checks(base_env(tmp_path), probe=False, plugin_path=[])
    names = [c.name for c in checks]
    assert names == [
        "program",
        "driver",
        "zoom credentials",
        "pulseaudio",
        "data directory",
        "http port",
        "open files",
        "plugins",
    ]
    assert {c.status for c in checks} <= {OK, WARN}
    out = io.StringIO()
    assert doctor.report(checks, out) == 0
    lines = out.getvalue().splitlines()
    assert len(lines) == len(checks) + 1
    assert lines[1].startswith("ok    driver: sim")
    plugins = by_name(checks)["plugins"].detail
    assert "recorder" in plugins and "share_capture" in plugins


def test_bad_settings_fail_first(tmp_path: Path) -> None:
    checks = doctor.run_checks(base_env(tmp_path, HTTP_ADDR="nonsense"), probe=False)
    assert checks[-1].name == "settings"
    assert checks[-1].status == FAIL
    assert "HTTP_ADDR" in checks[-1].detail
    assert doctor.report(checks, io.StringIO()) == 1


def test_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        check = run(base_env(tmp_path, HTTP_ADDR=f"127.0.0.1:{port}"))["http port"]
    assert check.status == FAIL
    assert "in use by another program" in check.detail
    assert f"sport = :{port}" in check.fix


def test_port_of_a_running_appliance_is_a_warning(tmp_path: Path, appliance) -> None:
    address = appliance.base_url.removeprefix("http://")
    check = run(base_env(tmp_path, HTTP_ADDR=address))["http port"]
    assert check.status == WARN
    assert "running headless-meeting-bot" in check.detail


def test_port_free(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    check = run(base_env(tmp_path, HTTP_ADDR=f"127.0.0.1:{port}"))["http port"]
    assert check.status == OK


def test_unknown_address(tmp_path: Path) -> None:
    check = run(base_env(tmp_path, HTTP_ADDR="192.0.2.1:8080"))["http port"]
    assert check.status == FAIL


def test_data_dir_states(tmp_path: Path) -> None:
    existing = tmp_path / "exists"
    existing.mkdir()
    check = run(base_env(tmp_path, HMB_DATA_DIR=str(existing)))["data directory"]
    assert check.status == OK and "is writable" in check.detail

    later = tmp_path / "not" / "yet"
    check = run(base_env(tmp_path, HMB_DATA_DIR=str(later)))["data directory"]
    assert check.status == OK and "will be created" in check.detail
    assert not later.exists()

    # Root passes permission checks, so "cannot be written" is a file in the way.
    blocker = tmp_path / "file"
    blocker.write_text("")
    check = run(base_env(tmp_path, HMB_DATA_DIR=str(blocker / "data")))
    assert check["data directory"].status == FAIL
    assert "HMB_DATA_DIR" in check["data directory"].fix


def test_zoom_without_credentials_fails_and_shows_no_secret(
    tmp_path: Path, monkeypatch
) -> None:
    secret = "s3cr3t-value-never-printed"
    env = base_env(tmp_path, HMB_DRIVER="zoom", ZOOM_SDK_SECRET=secret)
    checks = doctor.run_checks(env, probe=False, plugin_path=[])
    check = by_name(checks)["zoom credentials"]
    assert check.status == FAIL
    assert "ZOOM_SDK_KEY" in check.detail
    assert "ZOOM_SDK_SECRET" not in check.detail

    env["ZOOM_SDK_KEY"] = "key-value-never-printed"
    checks = doctor.run_checks(env, probe=False, plugin_path=[])
    assert by_name(checks)["zoom credentials"].status == OK
    out = io.StringIO()
    doctor.report(checks, out)
    assert secret not in out.getvalue()
    assert "key-value-never-printed" not in out.getvalue()


def test_zoom_driver_without_the_binding(tmp_path: Path, monkeypatch) -> None:
    real_find_spec = doctor.importlib.util.find_spec

    def find_spec(name, *args):
        return None if name == doctor.SDK_MODULE else real_find_spec(name, *args)

    monkeypatch.setattr(doctor.importlib.util, "find_spec", find_spec)
    env = base_env(tmp_path, HMB_DRIVER="zoom", ZOOM_SDK_KEY="k", ZOOM_SDK_SECRET="s")
    check = run(env)["driver"]
    assert check.status == FAIL
    assert "no Zoom SDK binding" in check.detail
    assert "[zoom]" in check.fix
    sim = run(base_env(tmp_path))["driver"]
    assert sim.status == OK and "no Zoom SDK binding" in sim.detail


def test_zoom_driver_reports_an_sdk_that_does_not_load(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(doctor.importlib.util, "find_spec", lambda name, *a: object())
    monkeypatch.setattr(doctor, "run_sdk_probe", lambda: "libfoo.so.1: not found")
    env = base_env(tmp_path, HMB_DRIVER="zoom", ZOOM_SDK_KEY="k", ZOOM_SDK_SECRET="s")
    checks = by_name(doctor.run_checks(env, probe=True, plugin_path=[]))
    assert checks["driver"].status == FAIL
    assert "libfoo.so.1" in checks["driver"].detail
    assert "apt-get install" in checks["driver"].fix


def test_pulseaudio_missing_fails_for_zoom_only(tmp_path: Path, monkeypatch) -> None:
    from appliance.drivers.zoom import host_setup

    monkeypatch.setattr(host_setup, "pulseaudio_binary", lambda: None)
    monkeypatch.setattr(host_setup, "pulse_server_available", lambda env=None: False)
    env = base_env(tmp_path, HMB_DRIVER="zoom", ZOOM_SDK_KEY="k", ZOOM_SDK_SECRET="s")
    check = run(env)["pulseaudio"]
    assert check.status == FAIL
    assert check.fix == "apt-get install pulseaudio"
    assert run(base_env(tmp_path))["pulseaudio"].status == OK


def test_open_files_limit(monkeypatch) -> None:
    monkeypatch.setattr(doctor.resource, "getrlimit", lambda _: (1024, 4096))
    check = doctor.check_open_files()
    assert check.status == WARN
    assert "LimitNOFILE" in check.fix


def test_a_plugin_named_but_missing_fails(tmp_path: Path) -> None:
    check = run(base_env(tmp_path, HMB_PLUGINS="nosuchplugin"))["plugins"]
    assert check.status == FAIL
    assert "nosuchplugin" in check.detail


def write_plugin(folder: Path, name: str) -> None:
    """A plugin laid out as ``pip install --target`` lays one out."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.py").write_text(
        textwrap.dedent(
            """
            from appliance.plugins import hookimpl

            class Plugin:
                @hookimpl
                def on_meeting_started(self, meeting):
                    pass
            """
        )
    )
    info = folder / f"{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n"
    )
    (info / "entry_points.txt").write_text(
        f"[headless_meeting_bot]\n{name} = {name}:Plugin\n"
    )


def test_plugin_path_folders_and_wheels(tmp_path: Path, monkeypatch) -> None:
    folder = tmp_path / "plugins"
    write_plugin(folder, "hmb_folder_plugin")
    staging = tmp_path / "staging"
    write_plugin(staging, "hmb_wheel_plugin")
    wheel = folder / "hmb_wheel_plugin-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path in staging.rglob("*"):
            if path.is_file():
                archive.write(path, path.relative_to(staging))
    missing = tmp_path / "missing"
    env = {cli.PLUGIN_PATH_ENV: f"{folder}{os.pathsep}{missing}"}
    assert cli.plugin_path(env) == [folder, wheel, missing]

    monkeypatch.setattr(sys, "path", list(sys.path))
    cli.add_plugin_path(env)
    assert sys.path[-3:] == [str(folder), str(wheel), str(missing)]
    checks = run(
        base_env(tmp_path, HMB_PLUGINS="hmb_folder_plugin,hmb_wheel_plugin"),
    )
    plugins = doctor.check_plugins(
        doctor.Settings.from_env(base_env(tmp_path)), cli.plugin_path(env)
    )
    assert checks["plugins"].status == OK, checks["plugins"]
    assert "hmb_folder_plugin (enabled)" in checks["plugins"].detail
    assert "hmb_wheel_plugin (enabled)" in checks["plugins"].detail
    assert plugins.status == WARN
    assert f"{missing} does not exist" in plugins.detail


def test_no_plugin_path_outside_the_binary(monkeypatch) -> None:
    monkeypatch.delattr(sys, "frozen", raising=False)
    assert cli.plugin_path({}) == []


def test_frozen_default_is_the_folder_beside_the_binary(
    tmp_path: Path, monkeypatch
) -> None:
    binary = tmp_path / "opt" / "headless-meeting-bot"
    binary.parent.mkdir()
    binary.write_text("")
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(binary))
    assert cli.plugin_path({}) == []
    (binary.parent / "plugins").mkdir()
    assert cli.plugin_path({}) == [binary.parent / "plugins"]


def test_cli_doctor_exit_codes(tmp_path: Path) -> None:
    good = subprocess.run(
        [sys.executable, "-m", "appliance", "doctor", "--quick"],
        env=base_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert good.returncode == 0, good.stdout + good.stderr
    assert good.stdout.splitlines()[-1].endswith("0 failures")
    bad = subprocess.run(
        [sys.executable, "-m", "appliance", "doctor", "--quick"],
        env=base_env(tmp_path, HMB_DRIVER="zoom", ZOOM_SDK_SECRET="hidden-secret"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 1
    assert "fail  zoom credentials: ZOOM_SDK_KEY not set" in bad.stdout
    assert "hidden-secret" not in bad.stdout + bad.stderr


@pytest.mark.zoom
def test_sdk_probe_loads_the_real_sdk(tmp_path: Path) -> None:
    # Not importorskip: importing the SDK here would load it into pytest itself.
    if doctor.importlib.util.find_spec(doctor.SDK_MODULE) is None:
        pytest.skip("the zoom extra is not installed")
    assert doctor.run_sdk_probe() == ""
