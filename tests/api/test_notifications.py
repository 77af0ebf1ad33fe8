"""/notifications over HTTP: listing, marking read, stream tickets, and every refusal of the
stream route that happens before it starts streaming (the stream itself needs a real server:
tests/e2e/test_notification_stream.py)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.test_foundation import assert_problem
from tests.helpers.auth import bearer, create_user
from tests.helpers.notifications import seed_notifications

BASE = "/api/v1/notifications"


def container(client: httpx.AsyncClient) -> Any:
    return client.app.state.container  # type: ignore[attr-defined]


async def user_with_headers(client: httpx.AsyncClient) -> tuple[str, dict[str, str]]:
    user = await create_user(client)
    return user["id"], bearer(client, user["id"])


# --------------------------------------------------------------------------- listing
async def test_the_list_is_the_callers_own_newest_first_in_api_shape(
    client: httpx.AsyncClient,
) -> None:
    alice, headers = await user_with_headers(client)
    bob, _ = await user_with_headers(client)
    ids = await seed_notifications(client, alice, 3)
    await seed_notifications(client, bob, 2)
    response = await client.get(BASE, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    page = response.json()
    assert (page["total"], page["limit"], page["offset"]) == (3, 20, 0)
    assert [item["id"] for item in page["items"]] == ids[::-1]
    first = page["items"][0]
    assert set(first) == {
        "id", "event_id", "type", "title", "body", "data", "read_at", "created_at"
    }  # fmt: skip
    assert first["type"] == "order.status_changed" and first["read_at"] is None
    assert first["data"] == {"order_id": "o2", "status": "validated"}
    assert first["created_at"].endswith(("Z", "+00:00"))


async def test_paging_and_the_unread_filter(client: httpx.AsyncClient) -> None:
    alice, headers = await user_with_headers(client)
    ids = await seed_notifications(client, alice, 5)
    read = await client.post(f"{BASE}/{ids[4]}/read", headers=headers)
    assert read.status_code == 200
    page = (await client.get(BASE, params={"limit": 2, "offset": 1}, headers=headers)).json()
    assert [i["id"] for i in page["items"]] == [ids[3], ids[2]] and page["total"] == 5
    unread = (await client.get(BASE, params={"unread": "true"}, headers=headers)).json()
    assert unread["total"] == 4 and ids[4] not in [i["id"] for i in unread["items"]]
    everything = (await client.get(BASE, params={"unread": "false"}, headers=headers)).json()
    assert everything["total"] == 5


@pytest.mark.parametrize(
    ("params", "loc"),
    [
        ({"limit": 0}, ["query", "limit"]),
        ({"limit": 101}, ["query", "limit"]),
        ({"limit": "ten"}, ["query", "limit"]),
        ({"offset": -1}, ["query", "offset"]),
        ({"unread": "maybe"}, ["query", "unread"]),
    ],
)
async def test_bad_listing_parameters_are_422_naming_them(
    client: httpx.AsyncClient, params: dict[str, Any], loc: list[str]
) -> None:
    _, headers = await user_with_headers(client)
    body = assert_problem(
        await client.get(BASE, params=params, headers=headers), 422, "validation-error"
    )
    assert [e["loc"] for e in body["errors"]] == [loc]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", BASE),
        ("POST", f"{BASE}/1/read"),
        ("POST", f"{BASE}/read-all"),
        ("POST", f"{BASE}/stream-ticket"),
        ("GET", f"{BASE}/stream"),
    ],
)
async def test_every_route_needs_a_caller(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    response = await client.request(method, path)
    assert_problem(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("path", [BASE, f"{BASE}/stream"])
async def test_a_bad_token_is_401(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path, headers={"Authorization": "Bearer not-a-token"})
    assert_problem(response, 401, "invalid-token")


# --------------------------------------------------------------------------- marking read
async def test_marking_one_read_returns_it_and_is_idempotent(client: httpx.AsyncClient) -> None:
    alice, headers = await user_with_headers(client)
    [only] = await seed_notifications(client, alice, 1)
    first = await client.post(f"{BASE}/{only}/read", headers=headers)
    assert first.status_code == 200, first.text
    assert first.json()["id"] == only and first.json()["read_at"] is not None
    again = await client.post(f"{BASE}/{only}/read", headers=headers)
    assert again.status_code == 200 and again.json()["read_at"] == first.json()["read_at"]


async def test_another_users_notification_is_404_and_stays_unread(
    client: httpx.AsyncClient,
) -> None:
    alice, _ = await user_with_headers(client)
    _, bob_headers = await user_with_headers(client)
    [alices] = await seed_notifications(client, alice, 1)
    body = assert_problem(
        await client.post(f"{BASE}/{alices}/read", headers=bob_headers), 404, "not-found"
    )
    assert alices in body["detail"]
    unknown = await client.post(f"{BASE}/999999999/read", headers=bob_headers)
    assert_problem(unknown, 404, "not-found")
    alice_headers = bearer(client, alice)
    listed = (await client.get(BASE, params={"unread": "true"}, headers=alice_headers)).json()
    assert [i["id"] for i in listed["items"]] == [alices]


@pytest.mark.parametrize("bad_id", ["abc", "0", "-1", "01", "1.5", "1" * 19])
async def test_a_malformed_notification_id_is_422(client: httpx.AsyncClient, bad_id: str) -> None:
    _, headers = await user_with_headers(client)
    body = assert_problem(
        await client.post(f"{BASE}/{bad_id}/read", headers=headers), 422, "validation-error"
    )
    assert [e["loc"] for e in body["errors"]] == [["path", "notification_id"]]


async def test_read_all_marks_only_the_callers(client: httpx.AsyncClient) -> None:
    alice, headers = await user_with_headers(client)
    bob, bob_headers = await user_with_headers(client)
    await seed_notifications(client, alice, 3)
    await seed_notifications(client, bob, 1)
    response = await client.post(f"{BASE}/read-all", headers=headers)
    assert response.status_code == 204 and response.content == b""
    assert (await client.get(BASE, params={"unread": True}, headers=headers)).json()["total"] == 0
    bobs = await client.get(BASE, params={"unread": True}, headers=bob_headers)
    assert bobs.json()["total"] == 1
    assert (await client.post(f"{BASE}/read-all", headers=headers)).status_code == 204


# --------------------------------------------------------------------------- the stream's refusals
async def test_a_stream_ticket_is_issued_to_the_caller(client: httpx.AsyncClient) -> None:
    _, headers = await user_with_headers(client)
    response = await client.post(f"{BASE}/stream-ticket", headers=headers)
    assert response.status_code == 201, response.text
    body = response.json()
    assert len(body["ticket"]) >= 40 and body["expires_at"]
    assert response.headers["cache-control"] == "no-store"


async def test_an_unknown_or_spent_ticket_is_401(client: httpx.AsyncClient) -> None:
    unknown = await client.get(f"{BASE}/stream", params={"ticket": "x" * 43})
    body = assert_problem(unknown, 401, "invalid-stream-ticket")
    assert "stream-ticket" in body["detail"]
    _, headers = await user_with_headers(client)
    ticket = (await client.post(f"{BASE}/stream-ticket", headers=headers)).json()["ticket"]
    await container(client).notifications.redeem_ticket(ticket)  # spent elsewhere
    spent = await client.get(f"{BASE}/stream", params={"ticket": ticket})
    assert_problem(spent, 401, "invalid-stream-ticket")


async def test_a_deactivated_users_ticket_is_401(client: httpx.AsyncClient) -> None:
    from dataclasses import replace

    alice, headers = await user_with_headers(client)
    ticket = (await client.post(f"{BASE}/stream-ticket", headers=headers)).json()["ticket"]
    async with container(client).uow() as uow:
        user = await uow.users.get(alice)
        await uow.users.update(replace(user, is_active=False))
        await uow.commit()
    response = await client.get(f"{BASE}/stream", params={"ticket": ticket})
    assert_problem(response, 401, "invalid-stream-ticket")


@pytest.mark.parametrize(
    ("params", "headers", "loc"),
    [
        ({"ticket": "has space"}, {}, ["query", "ticket"]),
        ({"ticket": ""}, {}, ["query", "ticket"]),
        ({"ticket": "t" * 129}, {}, ["query", "ticket"]),
        ({"last_event_id": "abc"}, {}, ["query", "last_event_id"]),
        ({"last_event_id": "-1"}, {}, ["query", "last_event_id"]),
        ({}, {"Last-Event-ID": "abc"}, ["header", "Last-Event-ID"]),
        ({}, {"Last-Event-ID": "1" * 19}, ["header", "Last-Event-ID"]),
    ],
)
async def test_bad_stream_parameters_are_422_naming_them(
    client: httpx.AsyncClient, params: dict[str, str], headers: dict[str, str], loc: list[str]
) -> None:
    _, auth = await user_with_headers(client)
    response = await client.get(f"{BASE}/stream", params=params, headers={**auth, **headers})
    body = assert_problem(response, 422, "validation-error")
    assert [e["loc"] for e in body["errors"]] == [loc]


async def test_streams_beyond_the_per_user_limit_are_429(client: httpx.AsyncClient) -> None:
    alice, headers = await user_with_headers(client)
    hub = container(client).notification_hub
    limit = container(client).settings.sse_max_streams_per_user
    held = [hub.acquire(alice) for _ in range(limit)]  # streams open elsewhere in this process
    try:
        response = await client.get(f"{BASE}/stream", headers=headers)
        body = assert_problem(response, 429, "too-many-streams")
        assert f"At most {limit}" in body["detail"]
        assert int(response.headers["retry-after"]) >= 1
    finally:
        for doorbell in held:
            hub.release(doorbell)
    assert hub.open_streams(alice) == 0
