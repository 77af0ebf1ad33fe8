"""Idempotency-Key on POST /orders: replay, other body, per user, concurrency, in flight."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from backend.infrastructure.db.tables import idempotency_keys, orders
from tests.api.test_foundation import assert_problem
from tests.helpers.orders import api_product, api_stock, api_user, body_of, container_of

ORDERS = "/api/v1/orders"


async def order_count(client: httpx.AsyncClient) -> int:
    async with container_of(client).engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(orders))).scalar_one())


def keyed(headers: dict[str, str], key: str) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key}


async def test_a_replay_returns_the_first_response(client: httpx.AsyncClient) -> None:
    _, headers = await api_user(client)
    product = await api_product(client, stock=5, price="3.30")
    body = body_of((product.id, 2), note="gift")
    first = await client.post(ORDERS, json=body, headers=keyed(headers, "key-1"))
    assert first.status_code == 201 and "idempotent-replayed" not in first.headers
    # The order changes afterwards; the replay is still the first answer, verbatim.
    await client.post(f"{first.headers['location']}/cancel", headers=headers)
    # Same meaning, other spelling: keys reordered, spacing changed.
    raw = b'{"note":"gift",  "items":[{"quantity":2,"product_id":"%s"}]}' % product.id.encode()
    again = await client.post(
        ORDERS,
        content=raw,
        headers={**keyed(headers, "key-1"), "content-type": "application/json"},
    )
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["etag"] == first.headers["etag"]
    assert again.json() == first.json()
    assert again.json()["status"] == "pending"
    assert await order_count(client) == 1
    assert await api_stock(client, product.id) == 5  # reserved once, released by the cancel


async def test_the_same_key_with_another_body_is_422(client: httpx.AsyncClient) -> None:
    _, headers = await api_user(client)
    product = await api_product(client, stock=5)
    await client.post(ORDERS, json=body_of((product.id, 1)), headers=keyed(headers, "k"))
    other = await client.post(ORDERS, json=body_of((product.id, 2)), headers=keyed(headers, "k"))
    body = assert_problem(other, 422, "idempotency-key-reused")
    assert "different request body" in body["detail"]
    assert await order_count(client) == 1
    assert await api_stock(client, product.id) == 4


async def test_keys_belong_to_one_user(client: httpx.AsyncClient) -> None:
    _, alice = await api_user(client)
    _, bob = await api_user(client)
    product = await api_product(client, stock=5)
    a = await client.post(ORDERS, json=body_of((product.id, 1)), headers=keyed(alice, "shared"))
    b = await client.post(ORDERS, json=body_of((product.id, 1)), headers=keyed(bob, "shared"))
    assert (a.status_code, b.status_code) == (201, 201)
    assert "idempotent-replayed" not in b.headers
    assert a.json()["id"] != b.json()["id"]


async def test_a_refused_request_stores_no_key(client: httpx.AsyncClient) -> None:
    _, headers = await api_user(client)
    product = await api_product(client, stock=1)
    body = body_of((product.id, 2))
    assert_problem(
        await client.post(ORDERS, json=body, headers=keyed(headers, "retry-me")),
        409,
        "insufficient-stock",
    )
    async with container_of(client).uow() as uow:
        await uow.products.adjust_stock(product.id, 5)
        await uow.commit()
    retried = await client.post(ORDERS, json=body, headers=keyed(headers, "retry-me"))
    assert retried.status_code == 201 and "idempotent-replayed" not in retried.headers


async def test_keys_expire_after_a_day(client: httpx.AsyncClient) -> None:
    from sqlalchemy import update

    _, headers = await api_user(client)
    product = await api_product(client, stock=5)
    first = await client.post(ORDERS, json=body_of((product.id, 1)), headers=keyed(headers, "old"))
    async with container_of(client).engine.begin() as conn:
        day_ago = datetime.now(UTC) - timedelta(hours=24, seconds=1)
        await conn.execute(update(idempotency_keys).values(created_at=day_ago))
    second = await client.post(ORDERS, json=body_of((product.id, 1)), headers=keyed(headers, "old"))
    assert second.status_code == 201 and "idempotent-replayed" not in second.headers
    assert second.json()["id"] != first.json()["id"]


@pytest.mark.parametrize("key", ["", "x" * 256, "has space", "caf\u00e9"])
async def test_a_malformed_key_is_422(client: httpx.AsyncClient, key: str) -> None:
    _, headers = await api_user(client)
    product = await api_product(client, stock=5)
    response = await client.post(
        ORDERS,
        json=body_of((product.id, 1)),
        headers={**headers, "Idempotency-Key": key.encode("utf-8")},  # type: ignore[dict-item]
    )
    body = assert_problem(response, 422, "validation-error")
    assert body["errors"][0]["loc"] == ["header", "Idempotency-Key"]
    assert await order_count(client) == 0


async def test_ten_concurrent_requests_with_one_key_create_one_order(
    database_url: str, settings_for: Any, client_for: Any
) -> None:
    async with client_for(settings_for(database_url, idempotency_wait_seconds=10)) as client:
        _, headers = await api_user(client)
        product = await api_product(client, stock=50)
        body = body_of((product.id, 3))
        responses = await asyncio.gather(
            *(client.post(ORDERS, json=body, headers=keyed(headers, "once")) for _ in range(10))
        )
        firsts = [
            r for r in responses if r.status_code == 201 and "idempotent-replayed" not in r.headers
        ]
        replays = [r for r in responses if r.headers.get("idempotent-replayed") == "true"]
        in_flight = [r for r in responses if r.status_code == 409]
        assert len(firsts) == 1
        assert len(replays) + len(in_flight) == 9
        assert all(r.json() == firsts[0].json() for r in replays)
        for r in in_flight:
            assert_problem(r, 409, "idempotency-in-flight")
        assert await order_count(client) == 1
        assert await api_stock(client, product.id) == 47


@pytest.mark.postgres
async def test_a_key_held_by_a_running_request_is_409_in_flight(
    pg_url: str, settings_for: Any, client_for: Any
) -> None:
    async with client_for(settings_for(pg_url, idempotency_wait_seconds=0.3)) as client:
        user, headers = await api_user(client)
        product = await api_product(client, stock=5)
        now = datetime.now(UTC)
        # The "first request": its transaction has claimed the key and is still running.
        async with container_of(client).uow() as first:
            claimed = await first.idempotency.claim(
                user["id"],
                "busy",
                request_hash="h",
                now=now,
                expired_before=now - timedelta(days=1),
                wait_seconds=1,
            )
            assert claimed is None
            second = await client.post(
                ORDERS, json=body_of((product.id, 1)), headers=keyed(headers, "busy")
            )
            body = assert_problem(second, 409, "idempotency-in-flight")
            assert "still being processed" in body["detail"]
        # The first request died (rolled back): the key is free again.
        third = await client.post(
            ORDERS, json=body_of((product.id, 1)), headers=keyed(headers, "busy")
        )
        assert third.status_code == 201
        assert await api_stock(client, product.id) == 4
