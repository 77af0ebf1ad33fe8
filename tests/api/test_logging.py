"""Logs operators can ship: one JSON object per line with timestamp, level, event, request id
and user id where known, and never a password, a token or the secret key.

The app logs through its real configuration (`configure_logging`, JSON renderer) to the
captured stderr; the test walks through register, login, refresh (body and cookie), a wrong
password, a replayed refresh token and logout, then greps everything that was written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.api.test_ratelimit import app_client
from tests.support import make_settings

PASSWORD = "correct-horse-battery-9"
WRONG_PASSWORD = "tr0ub4dor-and-3-wrong"
SECRET_KEY = "a-secret-key-for-the-logging-test-0123456789abcdef"


def parse_lines(text: str) -> list[dict[str, Any]]:
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines, "nothing was logged"
    return [json.loads(line) for line in lines]  # any line that is not JSON fails here


@pytest.mark.parametrize("level", ["INFO", "DEBUG"])
async def test_login_and_refresh_leave_no_secret_in_the_logs(
    tmp_path: Path, sqlite_url: str, capsys: pytest.CaptureFixture[str], level: str
) -> None:
    settings = make_settings(
        tmp_path,
        sqlite_url,
        secret_key=SECRET_KEY,
        log_format="json",
        log_level=level,
        rate_limit_enabled=True,  # the limiter decodes tokens too: it must not log them
    )
    secrets: list[str] = [PASSWORD, WRONG_PASSWORD, SECRET_KEY]
    async with app_client(settings) as c:
        email = "logs-user@example.com"
        creds = {"email": email, "password": PASSWORD}
        registered = await c.post("/api/v1/auth/register", json=creds)
        assert registered.status_code == 201, registered.text
        user_id = registered.json()["id"]

        login = await c.post("/api/v1/auth/login", json=creds)
        assert login.status_code == 200, login.text
        first = login.json()
        secrets += [first["access_token"], first["refresh_token"]]
        me = await c.get(
            "/api/v1/users/me",
            headers={"Authorization": f"Bearer {first['access_token']}", "X-Request-ID": "me-1"},
        )
        assert me.status_code == 200, me.text

        by_body = await c.post(
            "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
        )
        assert by_body.status_code == 200, by_body.text
        second = by_body.json()
        secrets += [second["access_token"], second["refresh_token"]]

        c.cookies.set("refresh_token", second["refresh_token"], path="/api/v1/auth")
        by_cookie = await c.post("/api/v1/auth/refresh")
        assert by_cookie.status_code == 200, by_cookie.text
        third = by_cookie.json()
        secrets += [third["access_token"], third["refresh_token"]]
        c.cookies.clear()

        wrong = await c.post(
            "/api/v1/auth/login", json={"email": email, "password": WRONG_PASSWORD}
        )
        assert wrong.status_code == 401
        form = {"username": email, "password": WRONG_PASSWORD}
        assert (await c.post("/api/v1/auth/token", data=form)).status_code == 401
        replayed = await c.post(
            "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
        )
        assert replayed.status_code == 401
        forged = await c.get("/api/v1/users/me", headers={"Authorization": "Bearer " + "x" * 40})
        assert forged.status_code == 401
        secrets.append("x" * 40)
        logout = await c.post("/api/v1/auth/logout", json={"refresh_token": third["refresh_token"]})
        assert logout.status_code == 204

    captured = capsys.readouterr()
    written = captured.out + captured.err
    for secret in secrets:
        assert secret not in written
    assert "Bearer" not in written
    assert "$2b$" not in written  # no bcrypt hash either (SQL parameters at DEBUG)

    entries = parse_lines(written)
    for entry in entries:
        assert {"timestamp", "level", "event"} <= set(entry), entry
    requests = [entry for entry in entries if entry["event"] == "request"]
    assert len(requests) >= 10
    assert all(entry["request_id"] for entry in requests)
    (me_line,) = [entry for entry in requests if entry["request_id"] == "me-1"]
    assert me_line["user_id"] == user_id
    assert me_line["path"] == "/api/v1/users/me"
    assert me_line["status"] == 200
