"""/auth over HTTP: registration, login, tokens, refresh rotation, logout, lockout."""

from __future__ import annotations

import asyncio
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from backend.core.config import Settings
from tests.api.test_foundation import assert_problem
from tests.helpers.auth import (
    DEFAULT_PASSWORD,
    bearer,
    create_user,
    forge_token,
    login,
    new_email,
    tamper,
)
from tests.support import make_settings

REGISTER = "/api/v1/auth/register"
LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/users/me"
USER_KEYS = {"id", "email", "full_name", "role", "is_active", "created_at"}


def refresh_cookie(response: httpx.Response) -> Any:
    cookie = SimpleCookie()
    cookie.load(response.headers["set-cookie"])
    return cookie["refresh_token"]


def without_request_id(body: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in body.items() if key != "request_id"}


def auth_events(event: str, outcome: str) -> float:
    value = REGISTRY.get_sample_value("auth_events_total", {"event": event, "outcome": outcome})
    return value or 0.0


# --------------------------------------------------------------------------- register
async def test_register_returns_the_user_and_never_a_hash(client: httpx.AsyncClient) -> None:
    response = await client.post(
        REGISTER,
        json={
            "email": "Ada.Lovelace@Example.com",
            "password": DEFAULT_PASSWORD,
            "full_name": "Ada",
        },
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == USER_KEYS
    assert body["email"] == "ada.lovelace@example.com"
    assert body["role"] == "customer" and body["is_active"] is True
    assert body["created_at"].endswith(("Z", "+00:00"))
    assert "$2b$" not in response.text and DEFAULT_PASSWORD not in response.text
    assert response.headers["location"] == f"/api/v1/users/{body['id']}"
    assert response.headers["cache-control"] == "no-store"


async def test_register_the_same_email_in_another_case_is_409(client: httpx.AsyncClient) -> None:
    await create_user(client, email="ada@example.com")
    response = await client.post(
        REGISTER, json={"email": "ADA@Example.COM", "password": DEFAULT_PASSWORD}
    )
    body = assert_problem(response, 409, "email-taken")
    assert "already exists" in body["detail"]


@pytest.mark.parametrize(
    ("password", "error_type"),
    [
        ("seven-7", "string_too_short"),
        ("x" * 73, "string_too_long"),
        ("é" * 37, "password_too_long"),  # 37 characters, 74 bytes
        ("😀" * 19, "password_too_long"),  # 19 characters, 76 bytes
    ],
)
async def test_register_refuses_passwords_outside_8_to_72_bytes(
    client: httpx.AsyncClient, password: str, error_type: str
) -> None:
    response = await client.post(REGISTER, json={"email": new_email(), "password": password})
    body = assert_problem(response, 422, "validation-error")
    (error,) = body["errors"]
    assert error["loc"] == ["body", "password"]
    assert error["type"] == error_type
    assert password not in response.text  # the input is never echoed


async def test_a_multibyte_password_of_exactly_72_bytes_is_accepted(
    client: httpx.AsyncClient,
) -> None:
    password = "é" * 36
    user = await create_user(client, password=password)
    assert (await login(client, user["email"], password)).status_code == 200


@pytest.mark.parametrize(
    ("payload", "loc"),
    [
        ({"email": "not-an-email", "password": DEFAULT_PASSWORD}, ["body", "email"]),
        ({"email": "a@b", "password": DEFAULT_PASSWORD}, ["body", "email"]),
        ({"password": DEFAULT_PASSWORD}, ["body", "email"]),
        ({"email": "x@example.com"}, ["body", "password"]),
        (
            {"email": "x@example.com", "password": DEFAULT_PASSWORD, "role": "admin"},
            ["body", "role"],
        ),
        ({"email": "x@example.com", "password": DEFAULT_PASSWORD, "full_name": ""}, None),
        ({"email": "x@example.com", "password": DEFAULT_PASSWORD, "full_name": "a\x00b"}, None),
    ],
)
async def test_register_refuses_bad_input(
    client: httpx.AsyncClient, payload: dict[str, Any], loc: list[str] | None
) -> None:
    body = assert_problem(await client.post(REGISTER, json=payload), 422, "validation-error")
    assert body["errors"]
    if loc is not None:
        assert body["errors"][0]["loc"] == loc


async def test_malformed_json_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        REGISTER, content=b'{"email": ', headers={"content-type": "application/json"}
    )
    assert_problem(response, 400, "malformed-request")


# --------------------------------------------------------------------------- login
async def test_login_returns_a_token_pair_and_the_refresh_cookie(
    client: httpx.AsyncClient,
) -> None:
    user = await create_user(client, email="ada@example.com")
    before = auth_events("login", "success")
    response = await login(client, "ADA@example.com")
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer" and body["expires_in"] == 900
    assert response.headers["cache-control"] == "no-store"
    cookie = refresh_cookie(response)
    assert cookie.value == body["refresh_token"]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "strict"
    assert cookie["path"] == "/api/v1/auth"
    assert not cookie["secure"]  # only in production
    me = await client.get(ME, headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200 and me.json()["id"] == user["id"]
    assert auth_events("login", "success") == before + 1


async def test_the_refresh_cookie_is_secure_in_production(
    tmp_path: Path, sqlite_url: str, client_for: Any
) -> None:
    settings = make_settings(tmp_path, sqlite_url, environment="production", secret_key="p" * 48)
    async with client_for(settings) as client:
        user = await create_user(client)
        response = await login(client, user["email"])
    assert response.status_code == 200
    assert refresh_cookie(response)["secure"] is True


async def test_wrong_password_and_unknown_email_get_identical_401s(
    client: httpx.AsyncClient,
) -> None:
    await create_user(client, email="ada@example.com")
    before = auth_events("login", "failure")
    wrong = await login(client, "ada@example.com", "not-the-password")
    unknown = await login(client, "nobody@example.com", "not-the-password")
    # Same instance path, same everything but the request id.
    assert without_request_id(assert_problem(wrong, 401, "invalid-credentials")) == (
        without_request_id(assert_problem(unknown, 401, "invalid-credentials"))
    )
    assert wrong.headers["www-authenticate"] == unknown.headers["www-authenticate"] == "Bearer"
    assert "set-cookie" not in wrong.headers
    assert auth_events("login", "failure") == before + 2


async def test_a_deactivated_user_cannot_log_in(client: httpx.AsyncClient) -> None:
    user = await create_user(client)
    admin = bearer(client, (await create_user(client, role="admin"))["id"])
    await client.patch(f"/api/v1/users/{user['id']}", json={"is_active": False}, headers=admin)
    assert_problem(await login(client, user["email"]), 401, "invalid-credentials")


async def test_the_oauth2_token_form_logs_in(client: httpx.AsyncClient) -> None:
    user = await create_user(client)
    ok = await client.post(
        "/api/v1/auth/token", data={"username": user["email"], "password": DEFAULT_PASSWORD}
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["token_type"] == "bearer"
    assert refresh_cookie(ok).value == ok.json()["refresh_token"]
    bad = await client.post(
        "/api/v1/auth/token", data={"username": user["email"], "password": "wrong-password"}
    )
    assert_problem(bad, 401, "invalid-credentials")
    missing = await client.post("/api/v1/auth/token", data={"username": user["email"]})
    assert_problem(missing, 422, "validation-error")


@pytest.mark.parametrize(
    ("form", "loc"),
    [
        ({"username": "", "password": "whatever-1"}, ["body", "username"]),  # empty = missing
        ({"username": "a@example.com", "password": ""}, ["body", "password"]),
        (
            {"username": "a@example.com", "password": "x", "grant_type": "client_credentials"},
            ["body", "grant_type"],
        ),
    ],
)
async def test_a_bad_token_form_is_422_naming_the_field(
    client: httpx.AsyncClient, form: dict[str, str], loc: list[str]
) -> None:
    response = await client.post("/api/v1/auth/token", data=form)
    body = assert_problem(response, 422, "validation-error")
    assert [e["loc"] for e in body["errors"]] == [loc]


async def test_the_token_form_takes_the_password_grant_type(client: httpx.AsyncClient) -> None:
    user = await create_user(client)
    form = {"username": user["email"], "password": DEFAULT_PASSWORD, "grant_type": "password"}
    assert (await client.post("/api/v1/auth/token", data=form)).status_code == 200


async def test_login_refuses_a_malformed_body(client: httpx.AsyncClient) -> None:
    body = assert_problem(
        await client.post(LOGIN, json={"email": "x@example.com", "password": ""}),
        422,
        "validation-error",
    )
    assert body["errors"][0]["loc"] == ["body", "password"]


# --------------------------------------------------------------------------- access tokens
async def test_me_without_a_token_is_401_with_www_authenticate(client: httpx.AsyncClient) -> None:
    response = await client.get(ME)
    assert_problem(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"] == "Bearer"
    basic = await client.get(ME, headers={"Authorization": "Basic YWRhOnB3"})
    assert_problem(basic, 401, "unauthenticated")


def _settings_secret(client: httpx.AsyncClient) -> str:
    settings: Settings = client.app.state.container.settings  # type: ignore[attr-defined]
    return settings.jwt_secret


BAD_ACCESS_TOKENS = [
    "expired",
    "tampered",
    "alg none",
    "HS512",
    "other key",
    "no exp",
    "type refresh",
    "unknown user",
    "deactivated user",
    "garbage",
]


@pytest.mark.parametrize("kind", BAD_ACCESS_TOKENS)
async def test_bad_access_tokens_are_401(client: httpx.AsyncClient, kind: str) -> None:
    secret = _settings_secret(client)
    user = await create_user(client)
    uid = user["id"]
    tokens = {
        "expired": lambda: forge_token(secret, sub=uid, iat_offset=-3600),
        "tampered": lambda: tamper(forge_token(secret, sub=uid)),
        "alg none": lambda: forge_token(secret, sub=uid, algorithm="none"),
        "HS512": lambda: forge_token(secret, sub=uid, algorithm="HS512"),
        "other key": lambda: forge_token("other-key-that-is-long-enough-0123456789ab", sub=uid),
        "no exp": lambda: forge_token(secret, sub=uid, drop=("exp",)),
        "type refresh": lambda: forge_token(secret, sub=uid, type="refresh"),
        "unknown user": lambda: forge_token(secret),
        "deactivated user": lambda: forge_token(secret, sub=uid),
        "garbage": lambda: "eyJhbGciOiJIUzI1NiJ9.e30.bad",
    }
    if kind == "deactivated user":
        admin = bearer(client, (await create_user(client, role="admin"))["id"])
        valid = {"Authorization": f"Bearer {tokens[kind]()}"}
        assert (await client.get(ME, headers=valid)).status_code == 200
        off = await client.patch(f"/api/v1/users/{uid}", json={"is_active": False}, headers=admin)
        assert off.status_code == 200, off.text
    response = await client.get(ME, headers={"Authorization": f"Bearer {tokens[kind]()}"})
    assert_problem(response, 401, "invalid-token")
    assert response.headers["www-authenticate"] == "Bearer"
    # The control: the same forger with nothing wrong gets in (except for the user cases).
    if kind not in {"unknown user", "deactivated user"}:
        good = {"Authorization": f"Bearer {forge_token(secret, sub=uid)}"}
        assert (await client.get(ME, headers=good)).status_code == 200


# --------------------------------------------------------------------------- refresh
async def test_refresh_rotates_and_reuse_revokes_the_family(client: httpx.AsyncClient) -> None:
    user = await create_user(client)
    first = (await login(client, user["email"])).json()
    client.cookies.clear()
    rotated = await client.post(REFRESH, json={"refresh_token": first["refresh_token"]})
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert refresh_cookie(rotated).value == second["refresh_token"]
    client.cookies.clear()
    reused_before = auth_events("refresh", "reuse")
    reused = await client.post(REFRESH, json={"refresh_token": first["refresh_token"]})
    assert_problem(reused, 401, "invalid-token")
    assert auth_events("refresh", "reuse") == reused_before + 1
    # The thief's replay killed the legitimate successor too.
    killed = await client.post(REFRESH, json={"refresh_token": second["refresh_token"]})
    assert_problem(killed, 401, "invalid-token")
    # Access tokens already issued live until they expire (documented in ADR 0007).
    me = await client.get(ME, headers={"Authorization": f"Bearer {second['access_token']}"})
    assert me.status_code == 200


async def test_refresh_from_the_cookie(client: httpx.AsyncClient) -> None:
    user = await create_user(client)
    await login(client, user["email"])  # the client keeps the cookie
    assert client.cookies.get("refresh_token")
    rotated = await client.post(REFRESH)
    assert rotated.status_code == 200, rotated.text
    assert client.cookies.get("refresh_token") == rotated.json()["refresh_token"]


async def test_refresh_without_or_with_an_unknown_token_is_401(client: httpx.AsyncClient) -> None:
    client.cookies.clear()
    assert_problem(await client.post(REFRESH), 401, "unauthenticated")
    assert_problem(await client.post(REFRESH, json={}), 401, "unauthenticated")
    unknown = await client.post(REFRESH, json={"refresh_token": "x" * 43})
    assert_problem(unknown, 401, "invalid-token")
    assert_problem(await client.post(REFRESH, json={"refresh_token": 7}), 422, "validation-error")


async def test_concurrent_refreshes_with_one_token_have_one_winner(
    database_url: str, settings_for: Any, client_for: Any
) -> None:
    async with client_for(settings_for(database_url)) as client:
        user = await create_user(client)
        token = (await login(client, user["email"])).json()["refresh_token"]
        client.cookies.clear()
        responses = await asyncio.gather(
            *(client.post(REFRESH, json={"refresh_token": token}) for _ in range(6))
        )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 401, 401, 401, 401, 401], [r.text for r in responses]
    for response in responses:
        if response.status_code == 401:
            assert_problem(response, 401, "invalid-token")


# --------------------------------------------------------------------------- logout
async def test_logout_revokes_the_family_and_clears_the_cookie(client: httpx.AsyncClient) -> None:
    user = await create_user(client)
    pair = (await login(client, user["email"])).json()
    client.cookies.clear()
    rotated = (await client.post(REFRESH, json={"refresh_token": pair["refresh_token"]})).json()
    response = await client.post(LOGOUT, json={"refresh_token": rotated["refresh_token"]})
    assert response.status_code == 204
    assert response.content == b""
    cleared = refresh_cookie(response)
    assert cleared.value == "" and cleared["max-age"] == "0"
    assert cleared["path"] == "/api/v1/auth"
    again = await client.post(REFRESH, json={"refresh_token": rotated["refresh_token"]})
    assert_problem(again, 401, "invalid-token")


async def test_logout_with_the_cookie_and_without_any_token(client: httpx.AsyncClient) -> None:
    user = await create_user(client)
    await login(client, user["email"])
    token = client.cookies.get("refresh_token")
    assert (await client.post(LOGOUT)).status_code == 204
    assert not client.cookies.get("refresh_token")
    assert_problem(await client.post(REFRESH, json={"refresh_token": token}), 401, "invalid-token")
    assert (await client.post(LOGOUT)).status_code == 204  # idempotent


# --------------------------------------------------------------------------- lockout
async def _assert_lockout(client: httpx.AsyncClient, email: str, exists: bool) -> None:
    if exists:
        await create_user(client, email=email)
    for _ in range(5):
        assert_problem(await login(client, email, "wrong-password"), 401, "invalid-credentials")
    locked = await login(client, email, DEFAULT_PASSWORD)  # even the right password
    body = assert_problem(locked, 429, "login-locked")
    assert 1 <= int(locked.headers["retry-after"]) <= 900
    assert "try again later" in body["detail"]
    other = await login(client, "someone-else@example.com", "wrong-password")
    assert other.status_code == 401  # per email, not global


@pytest.mark.parametrize("exists", [True, False], ids=["known-email", "unknown-email"])
async def test_five_failures_lock_the_email_embedded(
    client: httpx.AsyncClient, exists: bool
) -> None:
    locked_before = auth_events("login", "locked")
    await _assert_lockout(client, new_email(), exists)
    assert auth_events("login", "locked") == locked_before + 1


@pytest.mark.parametrize("exists", [True, False], ids=["known-email", "unknown-email"])
async def test_five_failures_lock_the_email_with_redis(
    tmp_path: Path, sqlite_url: str, redis_url: str, client_for: Any, exists: bool
) -> None:
    settings = make_settings(tmp_path, sqlite_url, redis_url=redis_url)
    email = new_email()
    async with client_for(settings) as client:
        await _assert_lockout(client, email, exists)
    # The lock lives in Redis: a second API instance sees it.
    async with client_for(settings) as other_instance:
        locked = await login(other_instance, email, DEFAULT_PASSWORD)
        assert_problem(locked, 429, "login-locked")
        redis = other_instance.app.state.container.redis  # type: ignore[attr-defined]
        keys = [k async for k in redis.scan_iter(match=f"{settings.redis_key_prefix}*")]
        assert keys
        await redis.delete(*keys)


# --------------------------------------------------------------------------- event loop
async def test_health_answers_while_20_logins_hash_at_cost_12(
    tmp_path: Path, sqlite_url: str, client_for: Any
) -> None:
    settings = make_settings(tmp_path, sqlite_url, bcrypt_rounds=12)
    async with client_for(settings) as client:
        user = await create_user(client)
        logins = [asyncio.ensure_future(login(client, user["email"])) for _ in range(20)]
        await asyncio.sleep(0)  # let the logins start
        health = await client.get("/api/v1/health")
        assert health.status_code == 200
        # /health answered while the hashing was still going on: the loop was free.
        assert not all(task.done() for task in logins)
        results = await asyncio.gather(*logins)
    assert [r.status_code for r in results] == [200] * 20


@pytest.mark.parametrize("username", ["a\x00b@example.com", "x" * 400])
async def test_the_token_form_treats_impossible_usernames_as_bad_credentials(
    database_url: str, settings_for: Any, client_for: Any, username: str
) -> None:
    async with client_for(settings_for(database_url)) as client:
        response = await client.post(
            "/api/v1/auth/token", data={"username": username, "password": "whatever-1"}
        )
    assert_problem(response, 401, "invalid-credentials")
