"""Two workers and two Beat processes (so every job is scheduled twice a tick and runs on
two workers at once) over 2,000 orders on PostgreSQL + Redis: `FOR UPDATE SKIP LOCKED`
and the compare-and-set transitions move every order exactly once per step."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from sqlalchemy import func, select

from backend.infrastructure.db.tables import order_status_history, processed_events
from tests.worker.stack import Stack, make_stack, place_orders, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
__all__ = ["make_stack"]

ORDERS = 2000
STEPS = ["pending", "validated", "approved", "processing", "completed"]
BUSY_WORKFLOW: dict[str, Any] = {
    "order_progression_interval": 1,
    "order_grace_period": 1,
    "order_processing_time": 1,
    "outbox_poll_interval": 1,
    # The validation net runs while order.created events are still being dispatched: both
    # paths race for the same pending orders.
    "workflow_retry_after": 5,
    "workflow_batch_size": 100,
    "workflow_move_batch_size": 100,
    # One batch per job run: a set-based batch moves 100 orders in one statement, so with
    # the default 50 batches one job run moved a whole step, and which worker ran the few
    # runs that found work was a coin toss. Twenty runs per step make both workers compete.
    "workflow_max_batches": 1,
}


def ran_jobs(stack: Stack, worker: str) -> Counter[str]:
    proc = next(p for p in stack.procs if p.name == worker)
    return Counter(line["job"] for line in proc.json_lines() if line["event"] == "workflow_job")


@pytest.mark.parametrize("mode", ["full"])
async def test_two_workers_and_two_beats_move_every_order_once_per_step(
    make_stack: Any, mode: str
) -> None:
    stack: Stack = make_stack(mode, **BUSY_WORKFLOW)
    ids = await place_orders(stack, ORDERS)
    stack.beat("beat1")
    stack.beat("beat2")
    stack.worker("w1")
    stack.worker("w2")

    async def tally() -> Counter[str]:
        return Counter((await stack.statuses()).values())

    async def all_completed() -> bool:
        return (await tally())["completed"] == ORDERS

    async def diagnosis() -> str:
        return f"{await tally()}\n{stack.logs()}"

    await wait_for(all_completed, 300, diagnosis)

    h = order_status_history
    per_step = await stack.rows(select(h.c.to_status, func.count()).group_by(h.c.to_status))
    assert dict(per_step) == dict.fromkeys(STEPS, ORDERS)  # 10,000 rows, 2,000 per step
    moves = await stack.moves()
    assert len(moves) == ORDERS * len(STEPS) and set(moves.values()) == {1}
    assert {order for order, _ in moves} == set(ids)

    # Both workers really competed for the same jobs (each ran progression batches).
    for worker in ("w1", "w2"):
        assert ran_jobs(stack, worker), f"{worker} moved nothing\n{stack.logs()}"

    async def all_handled() -> bool:
        return await stack.unhandled_events() == 0

    # 10,000 dispatches (one per event, four consumers each) on two workers: 2-4 minutes on a
    # loaded 2-core machine. A liveness bound, not a speed claim.
    await wait_for(all_handled, 600, diagnosis)
    validations = await stack.rows(
        select(func.count())
        .select_from(processed_events)
        .where(processed_events.c.consumer == "workflow.validate_order")
    )
    assert validations[0][0] == ORDERS
