"""The REST contract, through a real appliance on loopback with httpx."""

from __future__ import annotations

import time

import pytest

from tests.conftest import pid_alive

MEETING = "9876543210"


def error_of(response) -> tuple[int, str]:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message"}
    assert body["error"]["message"]
    return response.status_code, body["error"]["code"]


def test_health(appliance):
    response = appliance.http.get("/health")

    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_join_list_get_delete(appliance):
    response = appliance.post_meeting(MEETING, password="secret", display_name="Bot")
    assert response.status_code == 202
    assert response.json() == {"status": "joining"}

    listed = appliance.http.get("/api/meetings").json()
    assert listed[0]["meeting_id"] == MEETING
    assert set(listed[0]) == {"meeting_id", "status"}

    detail = appliance.wait_status(MEETING, "MEETING_STATUS_INMEETING")
    assert detail["seen_statuses"][-1] == "MEETING_STATUS_INMEETING"
    assert detail["error"] is None
    assert {"frames_received", "bytes_received"} <= set(detail["stats"])
    for _ in range(100):
        if len(detail["participants"]) == 4:
            break
        time.sleep(0.02)
        detail = appliance.meeting(MEETING)
    assert [p["name"] for p in detail["participants"]] == [
        "Alice",
        "Bob",
        "Carol",
        "Dave",
    ]
    pid = detail["worker_pid"]
    assert pid_alive(pid)

    response = appliance.http.delete(f"/api/meetings/{MEETING}")
    assert response.status_code == 200
    assert response.json() == {"status": "left"}

    assert error_of(appliance.http.get(f"/api/meetings/{MEETING}")) == (
        404,
        "MEETING_NOT_FOUND",
    )
    assert appliance.http.get("/api/meetings").json() == []
    assert not pid_alive(pid)


@pytest.mark.parametrize(
    "meeting_id", ["12345678", "123456789012", "abc", "", 12, None, True, "12345678a"]
)
def test_invalid_meeting_id(appliance, meeting_id):
    response = appliance.http.post("/api/meetings", json={"meeting_id": meeting_id})

    assert error_of(response) == (400, "INVALID_MEETING_ID")


def test_missing_meeting_id(appliance):
    response = appliance.http.post("/api/meetings", json={"password": "x"})

    assert error_of(response) == (400, "INVALID_MEETING_ID")


@pytest.mark.parametrize(
    ("given", "parsed"),
    [
        ("https://us02web.zoom.us/j/85012345678?pwd=abcDEF", "85012345678"),
        ("https://zoom.us/wc/join/123456789", "123456789"),
        ("850 1234 5678", "85012345678"),
        (123456789, "123456789"),
    ],
)
def test_join_url_and_formatted_ids_are_parsed(appliance, given, parsed):
    response = appliance.http.post("/api/meetings", json={"meeting_id": given})

    assert response.status_code == 202
    assert appliance.meeting(parsed)["meeting_id"] == parsed


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"not json", (400, "INVALID_REQUEST")),
        (b"[1, 2]", (400, "INVALID_REQUEST")),
        (b'{"meeting_id": "123456789", "colour": "red"}', (400, "INVALID_REQUEST")),
        (b'{"meeting_id": "123456789", "password": 5}', (400, "INVALID_REQUEST")),
        (b'{"meeting_id": "123456789", "scenario": "nope"}', (400, "INVALID_REQUEST")),
    ],
)
def test_bad_bodies(appliance, body, expected):
    response = appliance.http.post(
        "/api/meetings", content=body, headers={"content-type": "application/json"}
    )

    assert error_of(response) == expected


def test_duplicate_meeting_is_refused(appliance):
    assert appliance.post_meeting(MEETING).status_code == 202

    assert error_of(appliance.post_meeting(MEETING)) == (409, "MEETING_ALREADY_EXISTS")


def test_unknown_meeting(appliance):
    assert error_of(appliance.http.get("/api/meetings/111111111")) == (
        404,
        "MEETING_NOT_FOUND",
    )
    assert error_of(appliance.http.delete("/api/meetings/111111111")) == (
        404,
        "MEETING_NOT_FOUND",
    )


@pytest.mark.parametrize(
    ("scenario", "code", "sdk_name"),
    [
        ("auth_failed", "AUTH_FAILED", "AUTHRET_JWTTOKENWRONG"),
        ("wrong_passcode", "JOIN_MEETING_FAILED", "MEETING_FAIL_PASSWORD_ERR"),
        ("meeting_over", "JOIN_MEETING_FAILED", "MEETING_FAIL_MEETING_OVER"),
    ],
)
def test_join_failures_show_in_get(appliance, scenario, code, sdk_name):
    response = appliance.post_meeting(MEETING, scenario=scenario)
    assert response.status_code == 202

    detail = appliance.wait_status(MEETING, "MEETING_STATUS_FAILED")

    assert detail["error"]["code"] == code
    assert sdk_name in detail["error"]["message"]
    # A finished meeting stays listed with its final status until DELETE.
    listed = appliance.http.get("/api/meetings").json()
    assert listed == [{"meeting_id": MEETING, "status": "MEETING_STATUS_FAILED"}]


def test_sdk_init_failure(appliance, tmp_path):
    scenario = tmp_path / "init.toml"
    scenario.write_text('[meeting]\njoin_result = "sdk_init_failed"\n')
    appliance.post_meeting(MEETING, scenario=str(scenario))

    detail = appliance.wait_status(MEETING, "MEETING_STATUS_FAILED")

    assert detail["error"]["code"] == "SDK_INIT_FAILED"


def test_post_replaces_a_finished_meeting(appliance):
    appliance.post_meeting(MEETING, scenario="auth_failed")
    appliance.wait_status(MEETING, "MEETING_STATUS_FAILED")

    assert appliance.post_meeting(MEETING).status_code == 202

    detail = appliance.wait_status(MEETING, "MEETING_STATUS_INMEETING")
    assert detail["error"] is None


def test_delete_of_a_finished_meeting_removes_it(appliance):
    appliance.post_meeting(MEETING, scenario="meeting_over")
    appliance.wait_status(MEETING, "MEETING_STATUS_FAILED")

    assert appliance.http.delete(f"/api/meetings/{MEETING}").json() == {
        "status": "left"
    }

    assert appliance.http.get(f"/api/meetings/{MEETING}").status_code == 404


def test_waiting_room_then_in_meeting(appliance):
    appliance.post_meeting(MEETING, scenario="waiting_room")

    detail = appliance.wait_status(MEETING, "MEETING_STATUS_INMEETING")

    assert "MEETING_STATUS_IN_WAITING_ROOM" in detail["seen_statuses"]


def test_host_ends_the_meeting(appliance):
    appliance.post_meeting(MEETING, scenario="host_ends")

    detail = appliance.wait_status(MEETING, "MEETING_STATUS_ENDED")

    assert detail["error"]["code"] == "MEETING_ENDED"
    assert "EndMeetingReason_EndByHost" in detail["error"]["message"]
