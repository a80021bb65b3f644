"""Per-worker SDK homes and the PulseAudio server the SDK needs for raw audio."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from appliance.drivers.zoom import host_setup

pytestmark = pytest.mark.zoom


def test_prepared_home_has_log_dir_and_audio_config(tmp_path: Path) -> None:
    home = host_setup.prepare_sdk_home(tmp_path / "w1")
    assert (home / ".zoomsdk" / "logs").is_dir()
    conf = (home / ".config" / "zoomus.conf").read_text()
    assert conf.splitlines() == ["[General]", "system.audio.type=default"]
    # Idempotent.
    host_setup.prepare_sdk_home(home)
    assert (home / ".config" / "zoomus.conf").read_text() == conf


def test_zoomus_conf_merge_keeps_the_sdks_own_keys(tmp_path: Path) -> None:
    path = tmp_path / "zoomus.conf"
    path.write_text(
        "[General]\ncom.zoom.client.langid=1033\nsystem.audio.type=alsa\n"
        "deviceID=02:FC:00:00:00:01\n[Other]\nx=1\n"
    )
    host_setup.write_zoomus_conf(path)
    assert path.read_text().splitlines() == [
        "[General]",
        "com.zoom.client.langid=1033",
        "system.audio.type=default",
        "deviceID=02:FC:00:00:00:01",
        "[Other]",
        "x=1",
    ]


def test_zoomus_conf_gains_a_general_section_when_it_has_none(tmp_path: Path) -> None:
    path = tmp_path / "zoomus.conf"
    path.write_text("[Other]\nx=1\n")
    host_setup.write_zoomus_conf(path)
    assert path.read_text().splitlines() == [
        "[Other]",
        "x=1",
        "[General]",
        "system.audio.type=default",
    ]


def test_worker_environment_points_at_home_and_pulse(tmp_path: Path) -> None:
    pulse = host_setup.PulseAudio(tmp_path / "native")
    env = host_setup.worker_environment(tmp_path / "home", pulse)
    assert env == {
        "HOME": str(tmp_path / "home"),
        "PULSE_SERVER": f"unix:{tmp_path / 'native'}",
    }


def test_pulse_server_availability_follows_the_environment(tmp_path: Path) -> None:
    assert not host_setup.pulse_server_available(
        {"PULSE_SERVER": f"unix:{tmp_path / 'nothing'}"}
    )
    assert host_setup.pulse_server_available({"PULSE_SERVER": "tcp:127.0.0.1:4713"})
    assert not host_setup.pulse_server_available({"XDG_RUNTIME_DIR": str(tmp_path)})


def test_missing_pulseaudio_is_reported_with_the_package_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(host_setup, "pulseaudio_binary", lambda: None)
    monkeypatch.delenv("PULSE_SERVER", raising=False)
    with pytest.raises(host_setup.HostSetupError, match="apt-get install pulseaudio"):
        host_setup.ensure_pulseaudio(tmp_path / "pulse")
    assert any("pulseaudio" in p for p in host_setup.check_host())


@pytest.mark.skipif(
    host_setup.pulseaudio_binary() is None, reason="pulseaudio is not installed"
)
def test_private_pulseaudio_starts_answers_and_stops(tmp_path: Path) -> None:
    # A short path: unix socket paths are limited to about 100 bytes.
    runtime = tmp_path / "pa"
    pulse = host_setup.ensure_pulseaudio(runtime)
    try:
        assert pulse.process is not None
        assert host_setup.server_reachable(pulse.socket_path)
        # A second caller reuses it rather than starting another.
        again = host_setup.ensure_pulseaudio(runtime)
        assert again.process is None
        assert again.socket_path == pulse.socket_path
        assert host_setup.pulse_server_available({"PULSE_SERVER": pulse.server})
        pactl = host_setup.shutil.which("pactl")
        if pactl:
            info = subprocess.run(
                [pactl, "--server", pulse.server, "info"],
                capture_output=True,
                text=True,
                timeout=10,
                check=True,
            ).stdout
            assert f"Default Sink: {host_setup.SINK_NAME}" in info
            assert f"Default Source: {host_setup.SOURCE_NAME}" in info
    finally:
        pulse.stop()
    assert pulse.process.poll() is not None
    assert not host_setup.server_reachable(pulse.socket_path)
