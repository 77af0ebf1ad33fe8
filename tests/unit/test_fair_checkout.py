"""The checkout gate: turns in arrival order, none taken past a waiter, a bounded wait."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import exc as sa_exc

from backend.infrastructure.db.engine import FairCheckout


async def test_turns_go_in_arrival_order_and_a_newcomer_never_takes_a_waiters_turn() -> None:
    gate = FairCheckout(capacity=1, timeout=5)
    held = await gate.enter()
    order: list[str] = []

    async def take(name: str) -> None:
        turn = await gate.enter()
        order.append(name)
        await asyncio.sleep(0)
        turn.release()

    waiters = [asyncio.create_task(take(f"w{i}")) for i in range(5)]
    await asyncio.sleep(0)  # every waiter is queued
    held.release()
    newcomer = asyncio.create_task(take("newcomer"))  # arrives as the turn is handed on
    await asyncio.gather(*waiters, newcomer)
    assert order == ["w0", "w1", "w2", "w3", "w4", "newcomer"]


async def test_a_wait_past_the_timeout_is_the_pools_timeout_error() -> None:
    gate = FairCheckout(capacity=1, timeout=0.05)
    held = await gate.enter()
    with pytest.raises(sa_exc.TimeoutError, match=r"no database connection free within 0\.05 s"):
        await gate.enter()
    held.release()
    (await gate.enter()).release()  # the timed-out wait left nothing behind


async def test_a_cancelled_waiter_gives_its_place_up() -> None:
    gate = FairCheckout(capacity=1, timeout=5)
    held = await gate.enter()
    cancelled = asyncio.create_task(gate.enter())
    behind = asyncio.create_task(gate.enter())
    await asyncio.sleep(0)
    cancelled.cancel()
    held.release()
    turn = await asyncio.wait_for(behind, 1)
    turn.release()
    assert cancelled.cancelled()
    (await gate.enter()).release()  # capacity intact


def test_each_event_loop_has_its_own_turns() -> None:
    gate = FairCheckout(capacity=1, timeout=0.05)

    async def once() -> None:
        (await gate.enter()).release()

    asyncio.run(once())
    asyncio.run(once())  # a semaphore bound to the first loop would refuse the second
