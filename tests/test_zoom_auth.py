"""The SDK JWT and the checks ``create_driver`` makes before any join."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import jwt
import pytest

from appliance.drivers import load_driver
from appliance.drivers.zoom import driver as driver_module
from appliance.drivers.zoom.auth import SDKCredentials, make_sdk_jwt
from appliance.errors import DriverUnavailable, ErrorCode

pytestmark = pytest.mark.zoom

KEY = "abcdEFGHijklMNOP1234"
SECRET = "s3cret-s3cret-s3cret-s3cret-s3cret!!"


def test_jwt_is_hs256_with_the_claims_zoom_wants() -> None:
    now = 1_800_000_000
    token = make_sdk_jwt(SDKCredentials(KEY, SECRET), now=now)
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    claims = jwt.decode(
        token,
        SECRET,
        algorithms=["HS256"],
        options={"verify_exp": False, "verify_iat": False},
    )
    assert set(claims) == {"appKey", "iat", "exp", "tokenExp"}
    assert claims["appKey"] == KEY
    assert claims["iat"] <= now
    assert claims["tokenExp"] == claims["exp"]
    # Zoom wants at least 30 minutes of validity and at most 48 hours.
    assert 1800 <= claims["exp"] - claims["iat"] <= 48 * 3600


def test_jwt_verifies_now_and_only_with_the_secret() -> None:
    token = make_sdk_jwt(SDKCredentials(KEY, SECRET))
    jwt.decode(token, SECRET, algorithms=["HS256"])
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, SECRET + "x", algorithms=["HS256"])


def test_every_join_gets_a_fresh_token() -> None:
    creds = SDKCredentials(KEY, SECRET)
    assert make_sdk_jwt(creds, now=1_800_000_000) != make_sdk_jwt(
        creds, now=1_800_000_060
    )


def test_credentials_never_show_the_secret() -> None:
    creds = SDKCredentials(KEY, SECRET)
    assert SECRET not in repr(creds)
    with pytest.raises(ValueError):
        SDKCredentials(KEY, "")


def test_load_driver_without_the_binding_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    # A None entry in sys.modules makes the import raise ImportError.
    monkeypatch.setitem(sys.modules, "zoom_meeting_sdk", None)
    monkeypatch.setenv("ZOOM_SDK_KEY", KEY)
    monkeypatch.setenv("ZOOM_SDK_SECRET", SECRET)
    with pytest.raises(DriverUnavailable) as info:
        load_driver("zoom")
    assert "pip install 'headless-meeting-bot[zoom]'" in info.value.message
    assert info.value.code is ErrorCode.SDK_INIT_FAILED


def test_load_driver_without_credentials_names_the_variables(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    # Credentials are checked after the import; a stand-in binding skips loading it.
    monkeypatch.setattr(driver_module, "import_sdk", lambda: types.SimpleNamespace())
    monkeypatch.delenv("ZOOM_SDK_KEY", raising=False)
    monkeypatch.setenv("ZOOM_SDK_SECRET", SECRET)
    with pytest.raises(DriverUnavailable) as info:
        load_driver("zoom")
    assert "ZOOM_SDK_KEY" in info.value.message
    assert SECRET not in info.value.message
    # The worker's home was laid out for the SDK before the binding was imported.
    assert (tmp_path / ".zoomsdk" / "logs").is_dir()
    assert "system.audio.type=default" in (tmp_path / ".config/zoomus.conf").read_text()
