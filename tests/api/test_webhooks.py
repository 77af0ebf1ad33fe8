"""/webhooks through HTTP: registration with the secret shown once, the SSRF refusals, the
admin-only rule, every bad input as a problem, and the deliveries log and replays of
deliveries a real local receiver got."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from backend.infrastructure.db.tables import webhook_endpoints
from tests.api.test_foundation import assert_problem
from tests.helpers.auth import auth_headers
from tests.helpers.orders import api_product, api_user, body_of, container_of
from tests.helpers.webhook_receiver import Receiver, Reply
from tests.support import make_settings

PUBLIC_URL = "https://93.184.216.34/orderflow"  # a public literal: no DNS needed
UNKNOWN = str(uuid.uuid4())


@pytest.fixture
async def admin(client: httpx.AsyncClient) -> dict[str, str]:
    return await auth_headers(client, role="admin")


async def create(client: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> Any:
    payload = {"url": PUBLIC_URL, "event_types": ["order.created"], **body}
    return await client.post("/api/v1/webhooks", json=payload, headers=headers)


async def test_create_shows_the_secret_once_and_nothing_else_does(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    created = await create(client, admin, description="ERP")
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["secret"].startswith("whsec_")
    assert created.headers["location"] == f"/api/v1/webhooks/{body['id']}"
    assert (body["url"], body["event_types"], body["enabled"]) == (
        PUBLIC_URL,
        ["order.created"],
        True,
    )
    listed = await client.get("/api/v1/webhooks", headers=admin)
    assert listed.status_code == 200
    page = listed.json()
    assert (page["total"], page["limit"], page["offset"]) == (1, 20, 0)
    assert "secret" not in page["items"][0]
    one = await client.get(f"/api/v1/webhooks/{body['id']}", headers=admin)
    assert "secret" not in one.json()
    assert body["secret"] not in listed.text + one.text
    async with container_of(client).uow() as uow:
        raw = (await uow.connection.execute(select(webhook_endpoints))).mappings().one()
    assert body["secret"] not in str(dict(raw))  # encrypted at rest


async def test_delete_then_everything_about_it_is_404(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    webhook_id = (await create(client, admin)).json()["id"]
    deleted = await client.delete(f"/api/v1/webhooks/{webhook_id}", headers=admin)
    assert (deleted.status_code, deleted.content) == (204, b"")
    for method, path, body in [
        ("GET", "", None),
        ("DELETE", "", None),
        ("POST", "/rotate-secret", None),
        ("POST", "/enable", None),
        ("GET", "/deliveries", None),
        ("POST", f"/deliveries/{UNKNOWN}/replay", None),
        ("POST", "/deliveries/replay-failed", {"since": "2026-12-01T00:00:00Z"}),
    ]:
        response = await client.request(
            method, f"/api/v1/webhooks/{webhook_id}{path}", json=body, headers=admin
        )
        problem = assert_problem(response, 404, "webhook-not-found")
        assert webhook_id in problem["detail"]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:8080/hook", "loopback"),
        ("http://[::1]/hook", "loopback"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://10.0.0.5/hook", "private"),
        ("http://192.168.0.1/hook", "private"),
        ("http://100.64.1.1/hook", "carrier-grade NAT"),
        ("http://[fd00::1]/hook", "unique local"),
        ("http://[::ffff:127.0.0.1]/hook", "IPv4-mapped"),
        ("http://224.0.0.1/hook", "multicast"),
        ("http://2130706433/", "numeric or otherwise ambiguous"),
        ("http://0x7f.1/", "numeric or otherwise ambiguous"),
        ("http://0177.0.0.1/", "Invalid IPv4 address"),
        ("https://user:pw@93.184.216.34/", "credentials"),
        ("http://no-such-host.invalid/", "does not resolve"),
    ],
)
async def test_a_target_that_is_not_public_is_a_422_problem(
    client: httpx.AsyncClient, admin: dict[str, str], url: str, reason: str
) -> None:
    problem = assert_problem(await create(client, admin, url=url), 422, "unsafe-webhook-target")
    assert reason in problem["detail"]
    assert (await client.get("/api/v1/webhooks", headers=admin)).json()["total"] == 0


async def test_private_targets_are_allowed_when_the_setting_says_so(
    tmp_path: Path, sqlite_url: str, client_for: Any
) -> None:
    settings = make_settings(tmp_path, sqlite_url, webhook_allow_private_targets=True)
    async with client_for(settings) as c:
        headers = await auth_headers(c, role="admin")
        created = await create(c, headers, url="http://127.0.0.1:9/hook")
    assert created.status_code == 201, created.text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"event_types": ["order.created"]}, ["body", "url"]),
        ({"url": "ftp://93.184.216.34/", "event_types": ["order.created"]}, ["body", "url"]),
        ({"url": "https://", "event_types": ["order.created"]}, ["body", "url"]),
        ({"url": PUBLIC_URL, "event_types": []}, ["body", "event_types"]),
        ({"url": PUBLIC_URL, "event_types": ["order.deleted"]}, ["body", "event_types", 0]),
        ({"url": PUBLIC_URL}, ["body", "event_types"]),
        ({"url": PUBLIC_URL, "event_types": ["order.created"], "secret": "x"}, ["body", "secret"]),
        (
            {"url": PUBLIC_URL, "event_types": ["order.created"], "description": "  "},
            ["body", "description"],
        ),
        ({"url": PUBLIC_URL + "\u0000", "event_types": ["order.created"]}, ["body", "url"]),
    ],
)
async def test_invalid_create_bodies_are_422_naming_the_field(
    client: httpx.AsyncClient, admin: dict[str, str], body: dict[str, Any], field: list[Any]
) -> None:
    response = await client.post("/api/v1/webhooks", json=body, headers=admin)
    problem = assert_problem(response, 422, "validation-error")
    assert field in [error["loc"] for error in problem["errors"]]


async def test_a_body_that_is_not_json_is_a_400(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    response = await client.post(
        "/api/v1/webhooks",
        content=b"{not json",
        headers={**admin, "content-type": "application/json"},
    )
    assert_problem(response, 400, "malformed-request")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "", {"url": PUBLIC_URL, "event_types": ["order.created"]}),
        ("GET", "", None),
        ("GET", f"/{UNKNOWN}", None),
        ("DELETE", f"/{UNKNOWN}", None),
        ("POST", f"/{UNKNOWN}/rotate-secret", None),
        ("POST", f"/{UNKNOWN}/enable", None),
        ("GET", f"/{UNKNOWN}/deliveries", None),
        ("POST", f"/{UNKNOWN}/deliveries/{UNKNOWN}/replay", None),
        ("POST", f"/{UNKNOWN}/deliveries/replay-failed", {"since": "2026-12-01T00:00:00Z"}),
    ],
)
async def test_only_admins_may_touch_webhooks(
    client: httpx.AsyncClient, method: str, path: str, body: Any
) -> None:
    url = f"/api/v1/webhooks{path}"
    anonymous = await client.request(method, url, json=body)
    assert_problem(anonymous, 401, "unauthenticated")
    assert anonymous.headers["www-authenticate"] == "Bearer"
    _, customer = await api_user(client)
    assert_problem(await client.request(method, url, json=body, headers=customer), 403, "forbidden")


@pytest.mark.parametrize(
    ("method", "path", "body", "loc"),
    [
        ("GET", "/not-a-uuid", None, ["path", "webhook_id"]),
        ("DELETE", "/42", None, ["path", "webhook_id"]),
        ("GET", f"/{UNKNOWN}/deliveries?limit=0", None, ["query", "limit"]),
        ("GET", f"/{UNKNOWN}/deliveries?offset=-1", None, ["query", "offset"]),
        ("GET", "?limit=101", None, ["query", "limit"]),
        ("POST", f"/{UNKNOWN}/deliveries/x/replay", None, ["path", "delivery_id"]),
        ("POST", f"/{UNKNOWN}/deliveries/replay-failed", {}, ["body", "since"]),
        (
            "POST",
            f"/{UNKNOWN}/deliveries/replay-failed",
            {"since": "2026-12-01T00:00:00"},  # no offset: which time is that?
            ["body", "since"],
        ),
        (
            "POST",
            f"/{UNKNOWN}/deliveries/replay-failed",
            {"since": "yesterday"},
            ["body", "since"],
        ),
    ],
)
async def test_bad_ids_pages_and_times_are_422_naming_the_parameter(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    method: str,
    path: str,
    body: Any,
    loc: list[str],
) -> None:
    response = await client.request(method, f"/api/v1/webhooks{path}", json=body, headers=admin)
    problem = assert_problem(response, 422, "validation-error")
    assert loc in [error["loc"] for error in problem["errors"]]


async def test_rotate_returns_a_new_secret_and_the_overlap(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    created = (await create(client, admin)).json()
    rotated = await client.post(f"/api/v1/webhooks/{created['id']}/rotate-secret", headers=admin)
    assert rotated.status_code == 200
    body = rotated.json()
    assert body["secret"].startswith("whsec_") and body["secret"] != created["secret"]
    assert body["previous_secret_expires_at"] is not None
    enabled = await client.post(f"/api/v1/webhooks/{created['id']}/enable", headers=admin)
    assert (enabled.status_code, enabled.json()["replayed"]) == (200, 0)  # was not disabled


# --------------------------------------------------------------------------- deliveries
@pytest.fixture
async def local(tmp_path: Path, sqlite_url: str, client_for: Any) -> AsyncIterator[Any]:
    settings = make_settings(
        tmp_path, sqlite_url, webhook_allow_private_targets=True, webhook_backoff_base=60
    )
    async with client_for(settings) as c:
        yield c


async def order_events(client: httpx.AsyncClient) -> None:
    """Place an order and run its events' consumers, as the worker would."""
    product = await api_product(client, stock=10)
    _, customer = await api_user(client)
    placed = await client.post("/api/v1/orders", json=body_of((product.id, 1)), headers=customer)
    assert placed.status_code == 201, placed.text
    container = container_of(client)
    async with container.uow() as uow:
        records = await uow.outbox.claim_unpublished(10)
    for record in records:
        await container.event_dispatcher.dispatch(record.event)


async def test_the_log_shows_each_attempt_and_replays_keep_the_webhook_id(local: Any) -> None:
    admin = await auth_headers(local, role="admin")
    with Receiver(Reply(500, b"down"), Reply(200, b"ok")) as receiver:
        created = (await create(local, admin, url=receiver.url)).json()
        await order_events(local)
        deliverer = container_of(local).webhook_deliverer
        await deliverer.deliver_due()
        log = await local.get(f"/api/v1/webhooks/{created['id']}/deliveries", headers=admin)
        [failed_once] = log.json()["items"]
        assert (failed_once["status"], failed_once["attempt"]) == ("pending", 1)
        assert failed_once["response_status"] == 500
        assert failed_once["attempts"][0]["response_excerpt"] == "down"
        assert failed_once["next_attempt_at"] is not None

        replay_url = f"/api/v1/webhooks/{created['id']}/deliveries/{failed_once['id']}/replay"
        replayed = await local.post(replay_url, headers=admin)
        assert (replayed.status_code, replayed.json()["status"]) == (202, "pending")
        await deliverer.deliver_due()
        log = await local.get(f"/api/v1/webhooks/{created['id']}/deliveries", headers=admin)
        [delivered] = log.json()["items"]
        assert (delivered["status"], delivered["attempt"]) == ("succeeded", 2)
        assert [a["response_status"] for a in delivered["attempts"]] == [500, 200]
        assert [r.headers["webhook-id"] for r in receiver.received] == [delivered["event_id"]] * 2
        assert receiver.verified(created["secret"])[0]["type"] == "order.created"
    other = await local.post(
        f"/api/v1/webhooks/{created['id']}/deliveries/{UNKNOWN}/replay", headers=admin
    )
    assert_problem(other, 404, "webhook-delivery-not-found")


async def test_replay_failed_since_sends_the_failures_again(local: Any) -> None:
    admin = await auth_headers(local, role="admin")
    with Receiver(Reply(410, b"gone"), Reply(200)) as receiver:
        created = (await create(local, admin, url=receiver.url)).json()
        await order_events(local)
        await container_of(local).webhook_deliverer.deliver_due()
        one = await local.get(f"/api/v1/webhooks/{created['id']}", headers=admin)
        assert one.json()["enabled"] is False  # 410 disabled it
        since = {"since": "2000-01-01T00:00:00+00:00"}
        path = f"/api/v1/webhooks/{created['id']}/deliveries/replay-failed"
        response = await local.post(path, json=since, headers=admin)
        assert (response.status_code, response.json()) == (202, {"replayed": 1})
        enabled = await local.post(f"/api/v1/webhooks/{created['id']}/enable", headers=admin)
        assert enabled.json()["enabled"] is True
        await container_of(local).webhook_deliverer.deliver_due()
    log = await local.get(f"/api/v1/webhooks/{created['id']}/deliveries", headers=admin)
    assert log.json()["items"][0]["status"] == "succeeded"
    assert len(receiver.received) == 2
