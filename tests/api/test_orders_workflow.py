"""The workflow over HTTP: every action from every state, roles, history, PATCH, validate."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from backend.domain import workflow
from backend.domain.events import ORDER_VALIDATION_REQUESTED
from backend.domain.orders import OrderStatus
from backend.domain.workflow import Actor
from backend.infrastructure.db.tables import orders
from backend.services.order_workflow import WorkflowPolicy
from tests.api.test_foundation import assert_problem
from tests.fakes.services import validate
from tests.helpers.orders import api_product, api_stock, api_user, body_of, container_of

ORDERS = "/api/v1/orders"


@pytest.fixture
async def people(client: httpx.AsyncClient) -> dict[str, dict[str, str]]:
    _, owner = await api_user(client)
    _, other = await api_user(client)
    _, admin = await api_user(client, "admin")
    return {"owner": owner, "other": other, "admin": admin}


async def place(client: httpx.AsyncClient, headers: dict[str, str], quantity: int = 2) -> Any:
    product = await api_product(client, stock=10, price="5.00")
    response = await client.post(ORDERS, json=body_of((product.id, quantity)), headers=headers)
    assert response.status_code == 201, response.text
    return response.json(), product


async def force_status(client: httpx.AsyncClient, order_id: str, status: OrderStatus) -> None:
    async with container_of(client).engine.begin() as conn:
        await conn.execute(
            update(orders).where(orders.c.id == order_id).values(status=status.value)
        )


# (path suffix, target state, who calls it, request body)
ACTIONS = [
    ("cancel", OrderStatus.CANCELLED, "owner", None),
    ("cancel", OrderStatus.CANCELLED, "admin", {"reason": "on request"}),
    ("approve", OrderStatus.APPROVED, "admin", None),
    ("reject", OrderStatus.REJECTED, "admin", {"reason": "suspicious"}),
]


@pytest.mark.parametrize("source", list(OrderStatus), ids=str)
async def test_every_action_from_every_state_follows_the_workflow_data(
    client: httpx.AsyncClient, people: dict[str, dict[str, str]], source: OrderStatus
) -> None:
    for action, target, who, body in ACTIONS:
        order, product = await place(client, people["owner"])
        await force_status(client, order["id"], source)
        response = await client.post(
            f"{ORDERS}/{order['id']}/{action}", json=body, headers=people[who]
        )
        edge = workflow.transition_for(source, target)
        if edge is not None and Actor(who) in edge.actors:
            assert response.status_code == 200, response.text
            assert response.json()["status"] == target
            assert response.headers["etag"] == '"2"'
            assert await api_stock(client, product.id) == (10 if edge.releases_stock else 8)
        else:
            problem = assert_problem(response, 409, "illegal-transition")
            assert f"'{source}'" in problem["detail"] and f"'{target}'" in problem["detail"]
            assert (problem["from_status"], problem["to_status"]) == (source, target)
            assert await api_stock(client, product.id) == 8
        validate = await client.post(f"{ORDERS}/{order['id']}/validate", headers=people["admin"])
        current = (await client.get(f"{ORDERS}/{order['id']}", headers=people["admin"])).json()
        if current["status"] == "pending":
            assert validate.status_code == 202, validate.text
            assert validate.json() == {"message": "validation started"}
        else:
            assert_problem(validate, 409, "illegal-transition")


async def test_customers_cannot_use_admin_actions(
    client: httpx.AsyncClient, people: dict[str, dict[str, str]]
) -> None:
    order, _ = await place(client, people["owner"])
    await force_status(client, order["id"], OrderStatus.VALIDATED)
    for who in ("owner", "other"):
        for action, body in (("approve", None), ("reject", {"reason": "x"}), ("validate", None)):
            response = await client.post(
                f"{ORDERS}/{order['id']}/{action}", json=body, headers=people[who]
            )
            assert_problem(response, 403, "forbidden")
    for action in ("approve", "validate"):
        assert_problem(
            await client.post(f"{ORDERS}/{order['id']}/{action}"), 401, "unauthenticated"
        )
    unknown = f"{ORDERS}/{uuid.uuid4()}"
    assert_problem(
        await client.post(f"{unknown}/approve", headers=people["admin"]), 404, "not-found"
    )
    current = (await client.get(f"{ORDERS}/{order['id']}", headers=people["owner"])).json()
    assert current["status"] == "validated" and current["version"] == 1


async def test_reject_needs_a_reason_and_records_it(
    client: httpx.AsyncClient, people: dict[str, dict[str, str]]
) -> None:
    order, product = await place(client, people["owner"])
    path = f"{ORDERS}/{order['id']}/reject"
    for body in (None, {}, {"reason": ""}, {"reason": "x" * 501}, {"reason": "ok", "status": "x"}):
        assert_problem(
            await client.post(path, json=body, headers=people["admin"]), 422, "validation-error"
        )
    rejected = await client.post(path, json={"reason": " out of stock "}, headers=people["admin"])
    assert rejected.status_code == 200
    assert rejected.json()["status_reason"] == "out of stock"
    assert await api_stock(client, product.id) == 10


async def test_history_is_oldest_first_and_starts_with_the_placement(
    client: httpx.AsyncClient, people: dict[str, dict[str, str]]
) -> None:
    order, _ = await place(client, people["owner"])
    container = container_of(client)
    await validate(
        container.uow, container.clock, order["id"], WorkflowPolicy(max_total=Decimal(10**6))
    )
    await client.post(f"{ORDERS}/{order['id']}/approve", headers=people["admin"])
    history = (await client.get(f"{ORDERS}/{order['id']}/history", headers=people["owner"])).json()
    assert [(h["from_status"], h["to_status"], h["actor"]) for h in history] == [
        (None, "pending", "owner"),
        ("pending", "validated", "system"),
        ("validated", "approved", "admin"),
    ]
    assert all(set(h) == {"from_status", "to_status", "actor", "reason", "at"} for h in history)
    assert history[0]["at"] <= history[1]["at"] <= history[2]["at"]


async def test_patch_changes_details_with_if_match(
    client: httpx.AsyncClient, people: dict[str, dict[str, str]]
) -> None:
    order, _ = await place(client, people["owner"])
    path, owner = f"{ORDERS}/{order['id']}", people["owner"]
    changed = await client.patch(
        path, json={"note": "leave at door"}, headers={**owner, "If-Match": '"1"'}
    )
    assert changed.status_code == 200, changed.text
    assert changed.headers["etag"] == '"2"'
    assert (changed.json()["note"], changed.json()["version"]) == ("leave at door", 2)
    stale = await client.patch(path, json={"note": "x"}, headers={**owner, "If-Match": '"1"'})
    assert "version 2" in assert_problem(stale, 412, "precondition-failed")["detail"]
    junk = await client.patch(path, json={"note": "x"}, headers={**owner, "If-Match": "whatever"})
    assert_problem(junk, 412, "precondition-failed")
    anyv = await client.patch(
        path, json={"shipping_address": "2 Side St"}, headers={**owner, "If-Match": "*"}
    )
    assert anyv.json()["shipping_address"] == "2 Side St" and anyv.json()["note"] == "leave at door"
    # If-Match compares strongly (RFC 9110 13.1.1): a weak tag never matches, a list may.
    weak = await client.patch(
        path, json={"note": None}, headers={**people["admin"], "If-Match": 'W/"3"'}
    )
    assert_problem(weak, 412, "precondition-failed")
    cleared = await client.patch(
        path, json={"note": None}, headers={**people["admin"], "If-Match": '"1", "3"'}
    )
    assert cleared.json()["note"] is None and cleared.json()["version"] == 4
    assert cleared.headers["etag"] == '"4"'
    for bad in ({"status": "approved"}, {"total": "1.00"}, {"note": "x" * 1001}):
        assert_problem(await client.patch(path, json=bad, headers=owner), 422, "validation-error")
    await client.post(f"{path}/cancel", headers=owner)
    closed = await client.patch(path, json={"note": "late"}, headers=owner)
    assert "cancelled" in assert_problem(closed, 409, "order-not-editable")["detail"]


async def test_cancel_releases_stock_once(
    client: httpx.AsyncClient, people: dict[str, dict[str, str]]
) -> None:
    order, product = await place(client, people["owner"], quantity=4)
    path = f"{ORDERS}/{order['id']}/cancel"
    cancelled = await client.post(path, json={"reason": "changed my mind"}, headers=people["owner"])
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["status_reason"] == "changed my mind"
    again = await client.post(path, headers=people["owner"])
    assert_problem(again, 409, "illegal-transition")
    assert await api_stock(client, product.id) == 10


async def test_concurrent_cancel_and_approve_through_the_api(
    client: httpx.AsyncClient, people: dict[str, dict[str, str]]
) -> None:
    order, product = await place(client, people["owner"])
    await force_status(client, order["id"], OrderStatus.VALIDATED)
    path = f"{ORDERS}/{order['id']}"
    cancel, approve = await asyncio.gather(
        client.post(f"{path}/cancel", headers=people["owner"]),
        client.post(f"{path}/approve", headers=people["admin"]),
    )
    assert sorted([cancel.status_code, approve.status_code]) == [200, 409]
    loser = cancel if cancel.status_code == 409 else approve
    assert_problem(loser, 409, "illegal-transition")
    history = (await client.get(f"{path}/history", headers=people["owner"])).json()
    assert len(history) == 2
    assert await api_stock(client, product.id) == (10 if cancel.status_code == 200 else 8)


async def test_validate_writes_the_request_to_the_outbox_for_the_validation_consumer(
    client: httpx.AsyncClient, people: dict[str, dict[str, str]]
) -> None:
    """Validate-now goes through the outbox like every validation: the request commits an
    `order.validation_requested` event (the consumer validates it once it is relayed);
    nothing is validated in the request itself."""
    order, _ = await place(client, people["owner"])
    response = await client.post(f"{ORDERS}/{order['id']}/validate", headers=people["admin"])
    assert response.status_code == 202
    assert response.json() == {"message": "validation started"}
    container = container_of(client)
    async with container.uow() as uow:
        events = await uow.outbox.claim_unpublished(100)
        current = await uow.orders.get(order["id"])
    requested = [r.event for r in events if r.event.type == ORDER_VALIDATION_REQUESTED]
    assert [e.aggregate_id for e in requested] == [order["id"]]
    assert current is not None and current.status is OrderStatus.PENDING
