"""/users over HTTP: the caller's profile and password, and user administration."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.test_foundation import assert_problem
from tests.helpers.auth import DEFAULT_PASSWORD, auth_headers, bearer, create_user, login
from tests.support import make_settings

ME = "/api/v1/users/me"
USERS = "/api/v1/users"
MISSING = "00000000-0000-4000-8000-000000000000"


# --------------------------------------------------------------------------- /users/me
async def test_me_returns_the_caller_without_secrets(client: httpx.AsyncClient) -> None:
    user = await create_user(client, email="ada@example.com")
    response = await client.get(ME, headers=bearer(client, user["id"]))
    assert response.status_code == 200
    assert response.json() == user
    assert response.headers["cache-control"] == "no-store"
    assert "password" not in response.text and "$2b$" not in response.text


async def test_patch_me_changes_and_clears_the_name(client: httpx.AsyncClient) -> None:
    headers = await auth_headers(client)
    named = await client.patch(ME, json={"full_name": "  Ada Lovelace "}, headers=headers)
    assert named.status_code == 200, named.text
    assert named.json()["full_name"] == "Ada Lovelace"
    assert (await client.get(ME, headers=headers)).json()["full_name"] == "Ada Lovelace"
    empty = await client.patch(ME, json={}, headers=headers)  # a PATCH changes something
    assert (
        "at least one field" in assert_problem(empty, 422, "validation-error")["errors"][0]["msg"]
    )
    assert (await client.get(ME, headers=headers)).json()["full_name"] == "Ada Lovelace"
    cleared = await client.patch(ME, json={"full_name": None}, headers=headers)
    assert cleared.json()["full_name"] is None


@pytest.mark.parametrize(
    ("payload", "loc"),
    [
        ({"full_name": "x" * 201}, ["body", "full_name"]),
        ({"full_name": "   "}, ["body", "full_name"]),
        ({"role": "admin"}, ["body", "role"]),
        ({"email": "new@example.com"}, ["body", "email"]),
    ],
)
async def test_patch_me_refuses_bad_or_forbidden_fields(
    client: httpx.AsyncClient, payload: dict[str, Any], loc: list[str]
) -> None:
    headers = await auth_headers(client)
    body = assert_problem(
        await client.patch(ME, json=payload, headers=headers), 422, "validation-error"
    )
    assert body["errors"][0]["loc"] == loc
    assert (await client.get(ME, headers=headers)).json()["role"] == "customer"


async def test_me_routes_need_a_token(client: httpx.AsyncClient) -> None:
    for response in (
        await client.get(ME),
        await client.patch(ME, json={"full_name": "x"}),
        await client.post(
            f"{ME}/password", json={"current_password": "a", "new_password": "b" * 8}
        ),
    ):
        assert_problem(response, 401, "unauthenticated")
        assert response.headers["www-authenticate"] == "Bearer"


# --------------------------------------------------------------------------- password
async def test_change_password_revokes_every_refresh_token(client: httpx.AsyncClient) -> None:
    user = await create_user(client)
    phone = (await login(client, user["email"])).json()
    laptop = (await login(client, user["email"])).json()
    headers = {"Authorization": f"Bearer {phone['access_token']}"}
    changed = await client.post(
        f"{ME}/password",
        json={"current_password": DEFAULT_PASSWORD, "new_password": "a-brand-new-one"},
        headers=headers,
    )
    assert changed.status_code == 204, changed.text
    client.cookies.clear()
    for pair in (phone, laptop):
        refused = await client.post(
            "/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}
        )
        assert_problem(refused, 401, "invalid-token")
    assert_problem(await login(client, user["email"]), 401, "invalid-credentials")
    assert (await login(client, user["email"], "a-brand-new-one")).status_code == 200


async def test_change_password_with_a_wrong_current_password_is_400(
    client: httpx.AsyncClient,
) -> None:
    user = await create_user(client)
    response = await client.post(
        f"{ME}/password",
        json={"current_password": "not-my-password", "new_password": "a-brand-new-one"},
        headers=bearer(client, user["id"]),
    )
    assert_problem(response, 400, "wrong-password")
    assert (await login(client, user["email"])).status_code == 200  # unchanged


@pytest.mark.parametrize("new_password", ["short", "ü" * 37])
async def test_change_password_enforces_the_policy(
    client: httpx.AsyncClient, new_password: str
) -> None:
    headers = await auth_headers(client)
    response = await client.post(
        f"{ME}/password",
        json={"current_password": DEFAULT_PASSWORD, "new_password": new_password},
        headers=headers,
    )
    body = assert_problem(response, 422, "validation-error")
    assert body["errors"][0]["loc"] == ["body", "new_password"]


# --------------------------------------------------------------------------- administration
async def test_customers_get_403_and_anonymous_401_on_admin_routes(
    client: httpx.AsyncClient,
) -> None:
    customer = await auth_headers(client)
    target = await create_user(client)
    calls = [
        ("GET", USERS, None),
        ("GET", f"{USERS}/{target['id']}", None),
        ("PATCH", f"{USERS}/{target['id']}", {"role": "admin"}),
    ]
    for method, url, payload in calls:
        forbidden = await client.request(method, url, json=payload, headers=customer)
        body = assert_problem(forbidden, 403, "forbidden")
        assert "administrators" in body["detail"]
        assert_problem(await client.request(method, url, json=payload), 401, "unauthenticated")
    assert (await client.get(ME, headers=bearer(client, target["id"]))).json()["role"] == "customer"


async def test_admins_list_page_sort_and_search(client: httpx.AsyncClient) -> None:
    admin = await auth_headers(client, role="admin", email="root@example.com")
    for name in ("Ada Lovelace", "Grace Hopper", "Alan Turing"):
        first = name.split()[0].lower()
        await client.post(
            "/api/v1/auth/register",
            json={"email": f"{first}@example.com", "password": DEFAULT_PASSWORD, "full_name": name},
        )
    everyone = (await client.get(USERS, headers=admin, params={"sort": "email"})).json()
    assert everyone["total"] == 4 and everyone["limit"] == 20 and everyone["offset"] == 0
    assert [u["email"] for u in everyone["items"]] == [
        "ada@example.com",
        "alan@example.com",
        "grace@example.com",
        "root@example.com",
    ]
    page = (
        await client.get(USERS, headers=admin, params={"sort": "-email", "limit": 2, "offset": 1})
    ).json()
    assert [u["email"] for u in page["items"]] == ["grace@example.com", "alan@example.com"]
    assert page["total"] == 4
    found = (await client.get(USERS, headers=admin, params={"q": "HOPPER"})).json()
    assert [u["email"] for u in found["items"]] == ["grace@example.com"] and found["total"] == 1
    by_email = (await client.get(USERS, headers=admin, params={"q": "alan@"})).json()
    assert [u["full_name"] for u in by_email["items"]] == ["Alan Turing"]


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 101}, {"offset": -1}, {"sort": "password_hash"}, {"q": ""}],
)
async def test_bad_list_parameters_are_422(
    client: httpx.AsyncClient, params: dict[str, Any]
) -> None:
    admin = await auth_headers(client, role="admin")
    body = assert_problem(
        await client.get(USERS, headers=admin, params=params), 422, "validation-error"
    )
    assert body["errors"][0]["loc"][0] == "query"


async def test_admins_get_one_user(client: httpx.AsyncClient) -> None:
    admin = await auth_headers(client, role="admin")
    user = await create_user(client)
    response = await client.get(f"{USERS}/{user['id']}", headers=admin)
    assert response.status_code == 200 and response.json() == user
    assert_problem(await client.get(f"{USERS}/{MISSING}", headers=admin), 404, "not-found")
    assert_problem(await client.get(f"{USERS}/not-a-uuid", headers=admin), 422, "validation-error")


async def test_deactivation_stops_the_users_tokens_at_once(client: httpx.AsyncClient) -> None:
    admin = await auth_headers(client, role="admin")
    user = await create_user(client)
    pair = (await login(client, user["email"])).json()
    headers = {"Authorization": f"Bearer {pair['access_token']}"}
    assert (await client.get(ME, headers=headers)).status_code == 200
    off = await client.patch(f"{USERS}/{user['id']}", json={"is_active": False}, headers=admin)
    assert off.status_code == 200 and off.json()["is_active"] is False
    assert_problem(await client.get(ME, headers=headers), 401, "invalid-token")
    client.cookies.clear()
    refreshed = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}
    )
    assert_problem(refreshed, 401, "invalid-token")
    on = await client.patch(f"{USERS}/{user['id']}", json={"is_active": True}, headers=admin)
    assert on.json()["is_active"] is True
    assert (await client.get(ME, headers=headers)).status_code == 200


async def test_promotion_and_demotion(client: httpx.AsyncClient) -> None:
    admin = await auth_headers(client, role="admin")
    user = await create_user(client)
    headers = bearer(client, user["id"])
    assert (await client.get(USERS, headers=headers)).status_code == 403
    promoted = await client.patch(f"{USERS}/{user['id']}", json={"role": "admin"}, headers=admin)
    assert promoted.status_code == 200 and promoted.json()["role"] == "admin"
    assert (await client.get(USERS, headers=headers)).status_code == 200
    demoted = await client.patch(f"{USERS}/{user['id']}", json={"role": "customer"}, headers=admin)
    assert demoted.json()["role"] == "customer"
    assert (await client.get(USERS, headers=headers)).status_code == 403


async def test_admin_patch_refuses_bad_input_and_self_lockout(client: httpx.AsyncClient) -> None:
    root = await create_user(client, role="admin")
    admin = bearer(client, root["id"])
    user = await create_user(client)
    for payload in ({"role": "superuser"}, {"is_active": "maybe"}, {"email": "x@example.com"}):
        assert_problem(
            await client.patch(f"{USERS}/{user['id']}", json=payload, headers=admin),
            422,
            "validation-error",
        )
    assert_problem(
        await client.patch(f"{USERS}/{MISSING}", json={"role": "admin"}, headers=admin),
        404,
        "not-found",
    )
    for payload in ({"is_active": False}, {"role": "customer"}):
        refused = await client.patch(f"{USERS}/{root['id']}", json=payload, headers=admin)
        assert_problem(refused, 409, "self-lockout")
    unchanged = await client.patch(f"{USERS}/{root['id']}", json={"role": "admin"}, headers=admin)
    assert unchanged.status_code == 200 and unchanged.json()["role"] == "admin"


# --------------------------------------------------------------------------- cross-cutting
async def test_the_access_log_line_carries_the_user_id(
    tmp_path: Path, sqlite_url: str, client_for: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(tmp_path, sqlite_url, log_level="INFO", log_format="json")
    async with client_for(settings) as client:
        user = await create_user(client)
        await client.get(ME, headers=bearer(client, user["id"]))
        await client.get("/api/v1/health")
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in (captured.out + captured.err).splitlines() if line]
    by_path = {
        line["path"]: line
        for line in lines
        if line["event"] == "request" and line["logger"] == "orderflow.access"
    }
    assert by_path[ME]["user_id"] == user["id"]
    assert by_path["/api/v1/health"]["user_id"] is None
    assert by_path[ME]["level"] == "info" and by_path[ME]["status"] == 200


async def test_openapi_documents_the_bearer_scheme_and_errors(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    schemes = schema["components"]["securitySchemes"]
    (scheme,) = schemes.values()
    assert scheme["type"] == "oauth2"
    assert scheme["flows"]["password"]["tokenUrl"] == "/api/v1/auth/token"
    me = schema["paths"][ME]["get"]
    assert me["security"] and "401" in me["responses"]
    assert {"401", "403", "404", "409", "422"} <= set(
        schema["paths"][f"{USERS}/{{user_id}}"]["patch"]["responses"]
    )
    assert "429" in schema["paths"]["/api/v1/auth/login"]["post"]["responses"]


# --------------------------------------------------------------------------- first admin
async def test_first_admin_is_created_at_start_up_once(
    tmp_path: Path, sqlite_url: str, client_for: Any
) -> None:
    settings = make_settings(
        tmp_path,
        sqlite_url,
        first_admin_email="Root@Example.com",
        first_admin_password="first-admin-pass",
    )
    for _ in range(2):  # two starts, one admin
        async with client_for(settings) as client:
            response = await login(client, "root@example.com", "first-admin-pass")
            assert response.status_code == 200, response.text
            headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
            listed = (await client.get(USERS, headers=headers)).json()
            assert listed["total"] == 1
            assert listed["items"][0]["role"] == "admin"


async def test_first_admin_never_promotes_a_squatter(
    tmp_path: Path, sqlite_url: str, client_for: Any
) -> None:
    async with client_for(make_settings(tmp_path, sqlite_url)) as client:
        await create_user(client, email="root@example.com", password="squatter-pass")
    settings = make_settings(
        tmp_path,
        sqlite_url,
        first_admin_email="root@example.com",
        first_admin_password="first-admin-pass",
    )
    async with client_for(settings) as client:
        pair = (await login(client, "root@example.com", "squatter-pass")).json()
        me = await client.get(ME, headers={"Authorization": f"Bearer {pair['access_token']}"})
        assert me.json()["role"] == "customer"
