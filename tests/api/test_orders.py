"""POST /orders and reads over HTTP: snapshots, all-or-nothing, bad input, ownership, listing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from backend.infrastructure.db.tables import orders, outbox_events
from tests.api.test_foundation import assert_problem
from tests.helpers.fast_reads import assert_answered_alike
from tests.helpers.orders import (
    api_product,
    api_set_price,
    api_stock,
    api_user,
    body_of,
    container_of,
)

ORDERS = "/api/v1/orders"


async def count(client: httpx.AsyncClient, table: Any, *where: Any) -> int:
    async with container_of(client).engine.connect() as conn:
        query = select(func.count()).select_from(table).where(*where)
        return int((await conn.execute(query)).scalar_one())


@pytest.fixture
async def alice(client: httpx.AsyncClient) -> tuple[dict[str, Any], dict[str, str]]:
    return await api_user(client)


# --------------------------------------------------------------------------- placement
async def test_placing_an_order(client: httpx.AsyncClient, alice: Any) -> None:
    user, headers = alice
    shirt = await api_product(client, stock=5, price="19.99")
    sock = await api_product(client, stock=9, price="0.10")
    body = body_of((shirt.id, 3), (sock.id, 7), shipping_address=" 1 Main St ", note="ring")
    response = await client.post(ORDERS, json=body, headers=headers)

    assert response.status_code == 201, response.text
    order = response.json()
    assert response.headers["location"] == f"{ORDERS}/{order['id']}"
    assert response.headers["etag"] == '"1"'
    assert order["user_id"] == user["id"]
    assert order["status"] == "pending"
    assert order["total"] == "60.67"  # 3 x 19.99 + 7 x 0.10, exactly
    assert order["currency"] == "EUR"
    assert order["shipping_address"] == "1 Main St"
    assert order["note"] == "ring"
    assert order["status_reason"] is None and order["version"] == 1
    assert order["items"] == [
        {
            "product_id": shirt.id,
            "sku": shirt.sku,
            "product_name": shirt.name,
            "unit_price": "19.99",
            "quantity": 3,
            "line_total": "59.97",
        },
        {
            "product_id": sock.id,
            "sku": sock.sku,
            "product_name": sock.name,
            "unit_price": "0.10",
            "quantity": 7,
            "line_total": "0.70",
        },
    ]
    assert datetime.fromisoformat(order["created_at"]).utcoffset() == timedelta(0)
    assert (await api_stock(client, shirt.id), await api_stock(client, sock.id)) == (2, 2)
    fetched = await client.get(response.headers["location"], headers=headers)
    assert fetched.json() == order


async def test_a_price_change_leaves_placed_orders_alone(
    client: httpx.AsyncClient, alice: Any
) -> None:
    _, headers = alice
    product = await api_product(client, stock=5, price="12.34")
    order = (await client.post(ORDERS, json=body_of((product.id, 2)), headers=headers)).json()
    await api_set_price(client, product.id, "99.99")
    again = (await client.get(f"{ORDERS}/{order['id']}", headers=headers)).json()
    assert again["items"][0]["unit_price"] == "12.34"
    assert again["total"] == "24.68"
    assert again == order


async def test_a_short_second_line_is_409_and_reserves_nothing(
    client: httpx.AsyncClient, alice: Any
) -> None:
    _, headers = alice
    plenty = await api_product(client, stock=10)
    scarce = await api_product(client, stock=1)
    empty = await api_product(client, stock=0)
    response = await client.post(
        ORDERS, json=body_of((plenty.id, 2), (scarce.id, 2), (empty.id, 1)), headers=headers
    )
    body = assert_problem(response, 409, "insufficient-stock")
    assert body["product_ids"] == sorted([scarce.id, empty.id])
    assert scarce.id in body["detail"] and empty.id in body["detail"]
    assert await api_stock(client, plenty.id) == 10
    assert await api_stock(client, scarce.id) == 1
    assert await count(client, orders) == 0
    assert await count(client, outbox_events) == 0


async def test_unknown_and_inactive_products_are_422_naming_them(
    client: httpx.AsyncClient, alice: Any
) -> None:
    _, headers = alice
    good = await api_product(client, stock=5)
    retired = await api_product(client, stock=5)
    async with container_of(client).uow() as uow:
        from dataclasses import replace

        stored = await uow.products.get(retired.id)
        await uow.products.update(replace(stored, is_active=False), expected_version=1)
        await uow.commit()
    unknown = str(uuid.uuid4())
    response = await client.post(
        ORDERS, json=body_of((good.id, 1), (retired.id, 1), (unknown, 1)), headers=headers
    )
    body = assert_problem(response, 422, "product-unavailable")
    assert body["product_ids"] == sorted([retired.id, unknown])
    assert {tuple(e["loc"]) for e in body["errors"]} == {
        ("body", "items", 1, "product_id"),
        ("body", "items", 2, "product_id"),
    }
    assert await api_stock(client, good.id) == 5


@pytest.mark.parametrize(
    ("extra", "loc"),
    [
        ({"status": "approved"}, ["body", "status"]),
        ({"total": "0.01"}, ["body", "total"]),
        ({"user_id": str(uuid.uuid4())}, ["body", "user_id"]),
        ({"currency": "USD"}, ["body", "currency"]),
    ],
)
async def test_clients_cannot_set_what_the_server_decides(
    client: httpx.AsyncClient, alice: Any, extra: dict[str, Any], loc: list[Any]
) -> None:
    _, headers = alice
    product = await api_product(client, stock=5)
    response = await client.post(ORDERS, json=body_of((product.id, 1), **extra), headers=headers)
    body = assert_problem(response, 422, "validation-error")
    assert [e["loc"] for e in body["errors"]] == [loc]
    assert body["errors"][0]["type"] == "extra_forbidden"
    assert await count(client, orders) == 0


async def test_clients_cannot_set_a_line_price(client: httpx.AsyncClient, alice: Any) -> None:
    _, headers = alice
    product = await api_product(client, stock=5)
    line = {"product_id": product.id, "quantity": 1, "unit_price": "0.01"}
    response = await client.post(ORDERS, json={"items": [line]}, headers=headers)
    body = assert_problem(response, 422, "validation-error")
    assert [e["loc"] for e in body["errors"]] == [["body", "items", 0, "unit_price"]]


def _items(n: int, quantity: int = 1) -> list[dict[str, Any]]:
    return [{"product_id": str(uuid.uuid4()), "quantity": quantity} for _ in range(n)]


@pytest.mark.parametrize(
    ("body", "loc", "kind"),
    [
        ({"items": []}, ["body", "items"], "too_short"),
        ({"items": _items(51)}, ["body", "items"], "too_long"),
        ({"items": _items(1, 0)}, ["body", "items", 0, "quantity"], "greater_than_equal"),
        ({"items": _items(1, 1001)}, ["body", "items", 0, "quantity"], "less_than_equal"),
        ({"items": _items(1, "two")}, ["body", "items", 0, "quantity"], "int_type"),
        (
            {"items": [{"product_id": "nope", "quantity": 1}]},
            ["body", "items", 0, "product_id"],
            "uuid_parsing",
        ),
        ({"items": _items(1) * 2}, ["body", "items"], "duplicate_product"),
        ({}, ["body", "items"], "missing"),
        ({"items": _items(1), "note": "x" * 1001}, ["body", "note"], "string_too_long"),
        (
            {"items": _items(1), "shipping_address": "\x00"},
            ["body", "shipping_address"],
            "string_nul",
        ),
    ],
    ids=[
        "empty",
        "51",
        "qty-0",
        "qty-1001",
        "qty-text",
        "bad-id",
        "dup",
        "no-items",
        "long-note",
        "nul",
    ],
)
async def test_bad_order_bodies_are_422_naming_the_field(
    client: httpx.AsyncClient, alice: Any, body: dict[str, Any], loc: list[Any], kind: str
) -> None:
    _, headers = alice
    problem = assert_problem(
        await client.post(ORDERS, json=body, headers=headers), 422, "validation-error"
    )
    assert [(e["loc"], e["type"]) for e in problem["errors"]] == [(loc, kind)]


async def test_a_malformed_body_is_400(client: httpx.AsyncClient, alice: Any) -> None:
    _, headers = alice
    response = await client.post(
        ORDERS, content=b'{"items": [', headers={**headers, "content-type": "application/json"}
    )
    assert_problem(response, 400, "malformed-request")


async def test_orders_need_a_user(client: httpx.AsyncClient) -> None:
    product = await api_product(client, stock=5)
    for response in (
        await client.post(ORDERS, json=body_of((product.id, 1))),
        await client.get(ORDERS),
        await client.get(f"{ORDERS}/{uuid.uuid4()}"),
        await client.get(f"{ORDERS}/{uuid.uuid4()}/history"),
        await client.post(f"{ORDERS}/{uuid.uuid4()}/cancel"),
    ):
        assert_problem(response, 401, "unauthenticated")
        assert response.headers["www-authenticate"] == "Bearer"


async def test_reads_answered_before_the_framework_match_the_route(
    client: httpx.AsyncClient, alice: Any
) -> None:
    """The HTTP edge answers GET /orders/{id} with a bearer token itself; the same id in upper
    case (the same order) goes through the FastAPI route. Same answers."""
    _user, headers = alice
    _bob, bob_headers = await api_user(client)
    _admin, admin_headers = await api_user(client, role="admin")
    shirt = await api_product(client, stock=5, price="19.99")
    placed = await client.post(ORDERS, json=body_of((shirt.id, 2), note="é ✓"), headers=headers)
    order_id = placed.json()["id"]
    forged = {"Authorization": "Bearer " + "x" * 40}
    cases = [
        (order_id, headers),
        (order_id, {**headers, "If-None-Match": '"1"'}),
        (order_id, {**headers, "If-None-Match": '"2"'}),
        (order_id, {**headers, "If-None-Match": "1"}),
        (order_id, bob_headers),
        (order_id, admin_headers),
        (order_id, forged),
        (str(uuid.uuid4()), headers),
    ]
    for wanted, sent in cases:
        fast = await client.get(f"{ORDERS}/{wanted}", headers=sent)
        slow = await client.get(f"{ORDERS}/{wanted.upper()}", headers=sent)
        assert_answered_alike(fast, slow, (wanted, sent), fast_instance=f"{ORDERS}/{wanted}")


# --------------------------------------------------------------------------- reads
async def test_another_customers_order_is_404_and_admins_see_all(client: httpx.AsyncClient) -> None:
    _, alice = await api_user(client)
    _, bob = await api_user(client)
    _, admin = await api_user(client, "admin")
    product = await api_product(client, stock=5)
    order = (await client.post(ORDERS, json=body_of((product.id, 1)), headers=alice)).json()
    path = f"{ORDERS}/{order['id']}"
    for response in (
        await client.get(path, headers=bob),
        await client.get(f"{path}/history", headers=bob),
        await client.patch(path, json={"note": "mine now"}, headers=bob),
        await client.post(f"{path}/cancel", headers=bob),
    ):
        body = assert_problem(response, 404, "not-found")
        assert order["id"] in body["detail"]
    # An id that exists and one that does not answer alike: ids cannot be probed.
    missing = assert_problem(
        await client.get(f"{ORDERS}/{uuid.uuid4()}", headers=bob), 404, "not-found"
    )
    assert missing["title"] == "Order not found"
    assert (await client.get(path, headers=admin)).json() == order
    assert (await client.get(ORDERS, headers=bob)).json()["total"] == 0
    assert (await api_stock(client, product.id)) == 4


async def test_a_non_uuid_order_id_is_422(client: httpx.AsyncClient, alice: Any) -> None:
    _, headers = alice
    body = assert_problem(
        await client.get(f"{ORDERS}/not-an-id", headers=headers), 422, "validation-error"
    )
    assert body["errors"][0]["loc"] == ["path", "order_id"]


async def test_etag_and_if_none_match(client: httpx.AsyncClient, alice: Any) -> None:
    _, headers = alice
    product = await api_product(client, stock=5)
    order = (await client.post(ORDERS, json=body_of((product.id, 1)), headers=headers)).json()
    path = f"{ORDERS}/{order['id']}"
    first = await client.get(path, headers=headers)
    assert first.headers["etag"] == '"1"'
    cached = await client.get(path, headers={**headers, "If-None-Match": '"1"'})
    assert cached.status_code == 304 and cached.content == b""
    assert cached.headers["etag"] == '"1"'
    stale = await client.get(path, headers={**headers, "If-None-Match": '"7"'})
    assert stale.status_code == 200
    # If-None-Match compares weakly: W/"1" and a list holding "1" both match; * as well.
    for held in ('W/"1"', '"7", "1"', "*"):
        matched = await client.get(path, headers={**headers, "If-None-Match": held})
        assert matched.status_code == 304, held
    malformed = await client.get(path, headers={**headers, "If-None-Match": "1"})
    assert "If-None-Match" in assert_problem(malformed, 400, "bad-request")["detail"]


async def test_listing_filters_sorts_and_pages(client: httpx.AsyncClient) -> None:
    alice_user, alice = await api_user(client)
    bob_user, bob = await api_user(client)
    _, admin = await api_user(client, "admin")
    product = await api_product(client, stock=100, price="1.00")
    placed = []
    for quantity in (3, 1, 2):
        response = await client.post(ORDERS, json=body_of((product.id, quantity)), headers=alice)
        placed.append(response.json())
    bobs = (await client.post(ORDERS, json=body_of((product.id, 9)), headers=bob)).json()
    await client.post(f"{ORDERS}/{placed[1]['id']}/cancel", headers=alice)

    async def ids(headers: dict[str, str], **params: Any) -> tuple[list[str], int]:
        response = await client.get(ORDERS, params=params, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        assert (page["limit"], page["offset"]) == (params.get("limit", 20), params.get("offset", 0))
        return [o["id"] for o in page["items"]], page["total"]

    mine = [o["id"] for o in placed]
    assert await ids(alice) == (mine[::-1], 3)
    assert await ids(alice, sort="created_at", limit=1, offset=1) == ([mine[1]], 3)
    assert await ids(alice, sort="total") == ([mine[1], mine[2], mine[0]], 3)
    assert await ids(alice, sort="-total") == ([mine[0], mine[2], mine[1]], 3)
    assert await ids(alice, status="cancelled") == ([mine[1]], 1)
    window = {"created_from": placed[1]["created_at"], "created_to": placed[2]["created_at"]}
    assert await ids(alice, sort="created_at", **window) == (mine[1:], 2)
    assert await ids(admin, sort="-total", limit=1) == ([bobs["id"]], 4)
    assert await ids(admin, user_id=bob_user["id"]) == ([bobs["id"]], 1)
    assert await ids(alice, user_id=alice_user["id"]) == (mine[::-1], 3)
    denied = await client.get(ORDERS, params={"user_id": bob_user["id"]}, headers=alice)
    assert_problem(denied, 403, "forbidden")


@pytest.mark.parametrize(
    ("params", "loc"),
    [
        ({"sort": "status"}, ["query", "sort"]),
        ({"limit": 0}, ["query", "limit"]),
        ({"limit": 101}, ["query", "limit"]),
        ({"offset": -1}, ["query", "offset"]),
        ({"status": "lost"}, ["query", "status"]),
        ({"created_from": "2026-01-01T00:00:00"}, ["query", "created_from"]),
        ({"created_to": "yesterday"}, ["query", "created_to"]),
        ({"created_from": "0001-01-01T00:00:00+05:00"}, ["query", "created_from"]),
        ({"created_to": "9999-12-31T23:59:59-05:00"}, ["query", "created_to"]),
        # pydantic would read a number as Unix seconds; the document says date-time.
        ({"created_from": "70368744177663"}, ["query", "created_from"]),
        ({"created_to": "1.5"}, ["query", "created_to"]),
        ({"created_from": "+5"}, ["query", "created_from"]),
        ({"user_id": "bob"}, ["query", "user_id"]),
    ],
)
async def test_bad_listing_parameters_are_422(
    client: httpx.AsyncClient, alice: Any, params: dict[str, Any], loc: list[str]
) -> None:
    _, headers = alice
    body = assert_problem(
        await client.get(ORDERS, params=params, headers=headers), 422, "validation-error"
    )
    assert [e["loc"] for e in body["errors"]] == [loc]


async def test_each_change_leaves_one_outbox_row_per_event(
    client: httpx.AsyncClient, alice: Any
) -> None:
    _, headers = alice
    product = await api_product(client, stock=5)
    order = (await client.post(ORDERS, json=body_of((product.id, 2)), headers=headers)).json()
    mine = outbox_events.c.aggregate_id == order["id"]
    assert await count(client, outbox_events, mine) == 1
    await client.patch(f"{ORDERS}/{order['id']}", json={"note": "n"}, headers=headers)
    assert await count(client, outbox_events, mine) == 1  # details are not an event
    await client.post(f"{ORDERS}/{order['id']}/cancel", json={"reason": "r"}, headers=headers)
    async with container_of(client).engine.connect() as conn:
        rows = (
            await conn.execute(
                select(outbox_events).where(mine).order_by(outbox_events.c.created_at)
            )
        ).all()
    assert [r.type for r in rows] == ["order.created", "order.status_changed"]
    assert rows[1].payload["reason"] == "r" and rows[1].payload["actor"] == "owner"
    assert rows[0].payload["total"] == "20.00" and rows[0].payload["user_id"] == order["user_id"]


async def test_business_metrics(client: httpx.AsyncClient, alice: Any) -> None:
    _, headers = alice

    async def sample(name: str) -> float:
        text = (await client.get("/metrics")).text
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(name) and not line.startswith("#")
        )

    created, refused = (
        await sample("orders_created_total"),
        await sample("insufficient_stock_total"),
    )
    moved = await sample(
        'order_transitions_total{actor="owner",from_status="pending",to_status="cancelled"}'
    )
    product = await api_product(client, stock=1)
    order = (await client.post(ORDERS, json=body_of((product.id, 1)), headers=headers)).json()
    await client.post(ORDERS, json=body_of((product.id, 1)), headers=headers)
    await client.post(f"{ORDERS}/{order['id']}/cancel", headers=headers)
    assert await sample("orders_created_total") == created + 1
    assert await sample("insufficient_stock_total") == refused + 1
    assert (
        await sample(
            'order_transitions_total{actor="owner",from_status="pending",to_status="cancelled"}'
        )
        == moved + 1
    )


async def test_the_openapi_document_describes_orders(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    paths = schema["paths"]
    create = paths["/api/v1/orders"]["post"]
    assert {"201", "401", "409", "422"} <= set(create["responses"])
    assert create["responses"]["409"]["content"]["application/problem+json"]
    assert any(p["name"] == "Idempotency-Key" for p in create["parameters"])
    for path, method in [
        ("/api/v1/orders/{order_id}/approve", "post"),
        ("/api/v1/orders/{order_id}/reject", "post"),
        ("/api/v1/orders/{order_id}/validate", "post"),
    ]:
        assert {"403", "404", "409"} <= set(paths[path][method]["responses"])
    assert "412" in paths["/api/v1/orders/{order_id}"]["patch"]["responses"]
    order = schema["components"]["schemas"]["OrderOut"]
    assert order["properties"]["total"]["type"] == "string"
    assert datetime.now(UTC)  # the document was built without errors


async def test_cached_product_stock_follows_orders(client: httpx.AsyncClient, alice: Any) -> None:
    _, headers = alice
    product = await api_product(client, stock=5)
    path = f"/api/v1/products/{product.id}"
    assert (await client.get(path)).json()["stock"] == 5  # now cached
    order = (await client.post(ORDERS, json=body_of((product.id, 2)), headers=headers)).json()
    assert (await client.get(path)).json()["stock"] == 3
    await client.post(f"{ORDERS}/{order['id']}/cancel", headers=headers)
    assert (await client.get(path)).json()["stock"] == 5


async def test_cached_stock_follows_a_rejection_made_outside_the_api(
    client: httpx.AsyncClient, alice: Any
) -> None:
    """The worker's path: a system transition through the container's unit of work (no
    route involved) still drops the cached product: the workflow registers the invalidation
    with the unit of work's `on_commit`."""
    from backend.domain.orders import OrderStatus
    from backend.domain.workflow import Actor

    _, headers = alice
    product = await api_product(client, stock=5)
    path = f"/api/v1/products/{product.id}"
    order = (await client.post(ORDERS, json=body_of((product.id, 2)), headers=headers)).json()
    assert (await client.get(path)).json()["stock"] == 3  # now cached
    container = client.app.state.container  # type: ignore[attr-defined]
    await container.order_workflow.transition(
        order["id"],
        OrderStatus.REJECTED,
        actor=Actor.SYSTEM,
        reason="total above the maximum",
    )
    assert (await client.get(path)).json()["stock"] == 5
