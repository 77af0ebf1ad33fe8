"""SIGKILL the worker (its main process and every pool child: no warm shutdown, nothing
restored to the broker) while it is in the middle of the workflow, start a new one: every
order still completes, no transition happens twice, no event is lost.

The embedded SQLite broker loses the messages the dead worker had taken; Redis keeps them
invisible for its visibility timeout (an hour). Either way the database is the source of
truth: the Beat jobs re-claim their orders, `validate_pending` validates orders whose
event was lost, and the relay re-publishes events no consumer finished."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from sqlalchemy import func, select

from backend.infrastructure.db.tables import outbox_events, processed_events
from tests.worker.stack import MODES, Stack, make_stack, place_orders, wait_for

pytestmark = pytest.mark.slow
__all__ = ["make_stack"]

ORDERS = 150
STEPS = ["pending", "validated", "approved", "processing", "completed"]
CRASHY_WORKFLOW: dict[str, Any] = {
    "order_progression_interval": 1,
    "order_grace_period": 1,
    "order_processing_time": 1,
    "outbox_poll_interval": 1,
    "workflow_retry_after": 3,  # the safety nets step in 3 s after a lost message
    "workflow_batch_size": 20,  # many small batches: the kill lands inside one
    "workflow_move_batch_size": 20,
}


async def tally(stack: Stack) -> Counter[str]:
    return Counter((await stack.statuses()).values())


@pytest.mark.parametrize("mode", MODES)
async def test_a_sigkilled_worker_loses_nothing_and_doubles_nothing(
    make_stack: Any, mode: str
) -> None:
    stack: Stack = make_stack(mode, **CRASHY_WORKFLOW)
    ids = await place_orders(stack, ORDERS)
    first = stack.worker("w1")
    stack.beat()

    async def diagnosis() -> str:
        return f"{await tally(stack)}\n{stack.logs()}"

    async def midway() -> bool:  # validation under way, far from done
        return (await tally(stack))["pending"] < ORDERS

    await wait_for(midway, 90, diagnosis)
    first.kill()
    at_kill = await tally(stack)
    assert at_kill["completed"] < ORDERS, at_kill  # the worker died with work in hand

    stack.worker("w2")

    async def all_completed() -> bool:
        return (await tally(stack))["completed"] == ORDERS

    await wait_for(all_completed, 180, diagnosis)

    moves = await stack.moves()
    assert {(order, step) for order in ids for step in STEPS} == set(moves)
    assert set(moves.values()) == {1}, [k for k, n in moves.items() if n > 1]  # none twice

    async def all_handled() -> bool:
        return await stack.unhandled_events() == 0

    async def handling_diagnosis() -> str:
        return f"{await stack.unhandled_events()} events unhandled\n{await diagnosis()}"

    # No event lost: each reached its consumers. A liveness bound, not a speed claim: every
    # event runs every consumer (validation, webhooks, in-app, email), and the safety net
    # redelivers what the SIGKILL lost only WORKFLOW_RETRY_AFTER after its last delivery.
    await wait_for(all_handled, 180, handling_diagnosis)
    events = await stack.rows(select(func.count()).select_from(outbox_events))
    assert events[0][0] == ORDERS * len(STEPS)  # order.created + 4 status changes each
    validations = await stack.rows(
        select(processed_events.c.event_id).where(
            processed_events.c.consumer == "workflow.validate_order"
        )
    )
    assert len(validations) == ORDERS  # one record per order.created event, never two
