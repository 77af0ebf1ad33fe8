"""The order workflow driven by a real Celery worker and Beat, intervals of 1 s, in embedded
mode (SQLite + SQLite broker) and in full mode (PostgreSQL + Redis broker): orders are
placed through the API and move by themselves."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.helpers.orders import api_product, api_stock, api_user, body_of
from tests.worker.stack import MODES, Stack, make_stack, wait_for

pytestmark = pytest.mark.slow
__all__ = ["make_stack"]  # the fixture, imported by name

ORDERS = "/api/v1/orders"
# Seconds, as the issue asks: every Beat job and the outbox poll run each second.
FAST_WORKFLOW: dict[str, Any] = {
    "order_progression_interval": 1,
    "order_grace_period": 1,
    "order_processing_time": 1,
    "outbox_poll_interval": 1,
    "auto_approve_max_total": "100.00",
    "order_max_total": "1000.00",
    "workflow_retry_after": 30,  # validation must come from the order.created event here
}
STEPS = ["pending", "validated", "approved", "processing", "completed"]


async def place(client: httpx.AsyncClient, headers: dict[str, str], product_id: str, n: int) -> str:
    response = await client.post(ORDERS, json=body_of((product_id, n)), headers=headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def history(client: httpx.AsyncClient, headers: dict[str, str], order_id: str) -> list[Any]:
    response = await client.get(f"{ORDERS}/{order_id}/history", headers=headers)
    assert response.status_code == 200, response.text
    return [(h["from_status"], h["to_status"], h["actor"]) for h in response.json()]


def reached(stack: Stack, order_id: str, status: str) -> Any:
    async def check() -> bool:
        return (await stack.statuses()).get(order_id) == status

    return check


@pytest.mark.parametrize("mode", MODES)
async def test_orders_move_through_the_workflow_by_themselves(
    make_stack: Any, client_for: Any, mode: str
) -> None:
    stack: Stack = make_stack(mode, **FAST_WORKFLOW)

    async def diagnosis() -> str:
        return f"{await stack.statuses()}\n{stack.logs()}"

    async with client_for(stack.settings) as client:
        _, owner = await api_user(client)
        _, admin = await api_user(client, "admin")
        cheap = await api_product(client, stock=10, price="25.00")
        dear = await api_product(client, stock=10, price="400.00")
        pricey = await api_product(client, stock=10, price="600.00")
        small = await place(client, owner, cheap.id, 2)  # 50.00: auto-approved
        medium = await place(client, owner, dear.id, 1)  # 400.00: needs an admin
        large = await place(client, owner, pricey.id, 2)  # 1200.00: above the maximum
        assert await api_stock(client, pricey.id) == 8
        stack.worker()
        stack.beat()

        await wait_for(reached(stack, small, "completed"), 120, diagnosis)
        # The small order took four Beat ticks at least: the medium one had as many chances.
        statuses = await stack.statuses()
        assert statuses[medium] == "validated", await diagnosis()
        assert statuses[large] == "rejected"
        assert await history(client, owner, small) == [
            (None, "pending", "owner"),
            ("pending", "validated", "system"),
            ("validated", "approved", "system"),
            ("approved", "processing", "system"),
            ("processing", "completed", "system"),
        ]
        rejected = (await client.get(f"{ORDERS}/{large}", headers=owner)).json()
        assert "above the maximum" in rejected["status_reason"]
        assert await api_stock(client, pricey.id) == 10  # released by the rejection
        assert await api_stock(client, cheap.id) == 8  # kept by the completed order

        approved = await client.post(f"{ORDERS}/{medium}/approve", headers=admin)
        assert approved.status_code == 200, approved.text
        await wait_for(reached(stack, medium, "completed"), 60, diagnosis)
        assert [step[1] for step in await history(client, owner, medium)] == STEPS
        assert (await history(client, owner, medium))[2] == ("validated", "approved", "admin")

    moves = await stack.moves()
    assert all(n == 1 for n in moves.values()), moves  # no step twice, for any order
    assert sorted(to for (order, to) in moves if order == large) == ["pending", "rejected"]

    async def events_handled() -> bool:
        return await stack.unhandled_events() == 0

    await wait_for(events_handled, 30, diagnosis)  # every event reached its consumers


@pytest.mark.parametrize("mode", ["embedded"])
async def test_validate_now_goes_through_the_outbox_to_the_worker_with_the_request_id(
    make_stack: Any, client_for: Any, mode: str
) -> None:
    """POST /orders/{id}/validate commits an `order.validation_requested` event; the relay
    hands it to the worker, whose validation consumer validates the order under the
    request id of that POST. (The order.created event is marked handled first, so nothing
    but that request can validate it.)"""
    stack: Stack = make_stack(mode, workflow_retry_after=3600)
    async with client_for(stack.settings) as client:
        _, owner = await api_user(client)
        _, admin = await api_user(client, "admin")
        product = await api_product(client, stock=5, price="10.00")
        order_id = await place(client, owner, product.id, 1)
        async with stack.container() as container, container.uow() as uow:
            claimed = await uow.outbox.claim_unpublished(10)
            ids = [r.event.id for r in claimed]
            await uow.outbox.mark_published(ids, container.clock.now())
            await uow.outbox.mark_handled(ids, container.clock.now())
            await uow.commit()
        worker = stack.worker()

        response = await client.post(
            f"{ORDERS}/{order_id}/validate", headers={**admin, "X-Request-ID": "req-validate-9"}
        )
        assert response.status_code == 202, response.text

        await wait_for(reached(stack, order_id, "validated"), 60, stack.logs)

    def dispatch_lines() -> list[dict[str, Any]]:
        return [
            line
            for line in worker.json_lines()
            if line["event"] == "event_consumed"
            and line.get("consumer") == "workflow.validate_order"
            and line.get("request_id") == "req-validate-9"
        ]

    async def logged() -> bool:
        return bool(dispatch_lines())

    await wait_for(logged, 10, stack.logs)  # the line follows the commit by a moment
