"""Redis (broker and cache) goes away while customers place orders, and comes back empty:
the API keeps answering 201 (the outbox holds the events, the failed after-commit kick is
only logged), and once Redis is back every event is relayed and every order completes.

A private redis-server on a free port: the shared one is never touched."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.helpers.orders import api_product, api_user, body_of, container_of
from tests.helpers.redis_server import RedisServer
from tests.worker.stack import Stack, make_stack, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]
__all__ = ["make_stack"]

ORDERS = "/api/v1/orders"
BEFORE, DURING = 5, 20


async def place(client: httpx.AsyncClient, headers: dict[str, str], product_id: str) -> str:
    response = await client.post(ORDERS, json=body_of((product_id, 1)), headers=headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@pytest.mark.parametrize("mode", ["full"])
async def test_orders_are_accepted_while_redis_is_down_and_relayed_when_it_returns(
    make_stack: Any, client_for: Any, mode: str, tmp_path: Any
) -> None:
    redis = RedisServer(tmp_path / "redis", keep_data=False)
    redis.start()
    try:
        stack: Stack = make_stack(
            mode,
            redis_url=redis.url,
            order_progression_interval=1,
            order_grace_period=1,
            order_processing_time=1,
            outbox_poll_interval=1,
            workflow_retry_after=3,  # events lost with Redis's memory are re-published
        )
        await run_outage(stack, redis, client_for)
    finally:
        redis.close()


async def run_outage(stack: Stack, redis: RedisServer, client_for: Any) -> None:
    async def tally() -> Counter[str]:
        return Counter((await stack.statuses()).values())

    async def diagnosis() -> str:
        return f"{await tally()}\n{stack.logs()}"

    async with client_for(stack.settings) as client:
        _, owner = await api_user(client)
        product = await api_product(client, stock=100, price="10.00")
        stack.worker()
        stack.beat()
        before = [await place(client, owner, product.id) for _ in range(BEFORE)]

        redis.stop()
        during = [await place(client, owner, product.id) for _ in range(DURING)]
        container = container_of(client)
        async with container.uow() as uow:
            waiting, _ = await uow.outbox.backlog(datetime.now(UTC))
        assert waiting >= DURING  # held in the outbox, not lost with the broker
        readiness = await client.get("/api/v1/readiness")
        assert readiness.status_code == 503
        assert readiness.json()["checks"]["broker"]["status"] == "error"

        redis.start()  # empty: whatever was queued in it is gone

        async def all_completed() -> bool:
            statuses = await stack.statuses()
            return all(statuses.get(i) == "completed" for i in before + during)

        await wait_for(all_completed, 180, diagnosis)
        assert (await client.get("/api/v1/readiness")).status_code == 200

    async def all_handled() -> bool:
        return await stack.unhandled_events() == 0

    await wait_for(all_handled, 60, diagnosis)
    moves = await stack.moves()
    assert set(moves.values()) == {1}  # nothing moved twice despite the re-publishing
