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
