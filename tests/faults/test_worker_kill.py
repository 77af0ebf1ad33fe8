"""The worker is SIGKILLed (main process and pool children: no warm shutdown, nothing
handed back to the broker) while the workflow is mid-batch: the supervisor starts a new
one, and every order still completes with each step taken once and every event handled."""

from __future__ import annotations

import pytest

from tests.faults.conftest import FaultStack
from tests.faults.shop import OrderStream, Shop
from tests.helpers.polling import wait_until

pytestmark = [pytest.mark.faults, pytest.mark.slow]

STEPS = {"pending", "validated", "approved", "processing", "completed"}


def test_a_sigkilled_worker_is_replaced_and_loses_or_doubles_nothing(stack: FaultStack) -> None:
    shop = Shop.open(stack.base, stock=100_000)
    with OrderStream(shop, clients=4, readers=0) as stream:
        wait_until(lambda: len(stack.order_ids()) >= 60, 120, stack.logs)

        def mid_workflow() -> bool:  # some orders moved on, many still to move
            statuses = set(stack.statuses().values())
            return len(statuses - {"pending"}) > 0 and "pending" in statuses

        wait_until(mid_workflow, 120, stack.logs)
        first = stack.worker_pid()
        stack.kill_worker()
    stream.assert_clean()
    acknowledged = stream.acknowledged()
    assert set(acknowledged.values()) == stack.order_ids()
    wait_until(lambda: stack.worker_pid() != first, 60, stack.logs)

    def all_completed() -> bool:
        return set(stack.statuses().values()) == {"completed"}

    wait_until(all_completed, 240, lambda: f"{stack.statuses()}\n{stack.logs()}")
    moves = stack.moves()
    assert set(moves) == {(o, s) for o in acknowledged.values() for s in STEPS}
    assert set(moves.values()) == {1}
    wait_until(lambda: stack.unhandled_events() == 0, 120, stack.logs)
    assert "exited with -9" in stack.log_path.read_text()
