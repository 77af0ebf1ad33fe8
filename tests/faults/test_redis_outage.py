"""Redis (broker and cache) is killed for 10 s while four customers place orders: no 5xx,
one order per Idempotency-Key, the same worker process is alive afterwards (it reconnected
rather than died), and every order still completes, each step taken once."""

from __future__ import annotations

import time

import pytest

from tests.faults.conftest import FaultStack
from tests.faults.shop import OrderStream, Shop
from tests.helpers.polling import wait_until

pytestmark = [pytest.mark.faults, pytest.mark.slow]

STEPS = {"pending", "validated", "approved", "processing", "completed"}


def test_orders_flow_through_a_redis_outage_and_the_worker_survives(stack: FaultStack) -> None:
    shop = Shop.open(stack.base, stock=100_000)
    worker = stack.worker_pid()
    with OrderStream(shop, clients=4) as stream:
        time.sleep(5)
        stack.redis.stop()
        time.sleep(10)
        stack.redis.start()
        time.sleep(10)
    stream.assert_clean()
    acknowledged = stream.acknowledged()
    assert len(acknowledged) > 20, stream.statuses()
    assert set(acknowledged.values()) == stack.order_ids()  # every 201 is there, no other
    assert stack.worker_pid() == worker, stack.logs()  # survived, not restarted

    def all_completed() -> bool:
        return set(stack.statuses().values()) == {"completed"}

    wait_until(all_completed, 180, lambda: f"{stack.statuses()}\n{stack.logs()}")
    moves = stack.moves()
    assert set(moves) == {(o, s) for o in acknowledged.values() for s in STEPS}
    assert set(moves.values()) == {1}
