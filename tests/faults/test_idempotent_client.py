"""One client stream through every fault in turn (Redis killed, PostgreSQL shut down and
restarted, the worker SIGKILLed), each order retried with its Idempotency-Key until it is
acknowledged: exactly one order per key, all of them completed, each step taken once."""

from __future__ import annotations

import time

import pytest

from tests.faults.conftest import FaultStack
from tests.faults.shop import OrderStream, Shop
from tests.helpers.polling import wait_until

pytestmark = [pytest.mark.faults, pytest.mark.slow]

STEPS = {"pending", "validated", "approved", "processing", "completed"}


def test_a_retrying_client_gets_one_order_per_key_through_every_fault(
    stack: FaultStack,
) -> None:
    shop = Shop.open(stack.base, stock=100_000)
    with OrderStream(shop, clients=4, readers=1) as stream:
        time.sleep(3)
        stack.redis.stop()
        time.sleep(10)
        stack.redis.start()
        time.sleep(3)
        stack.postgres.stop("smart", wait=False)
        time.sleep(3)
        stack.postgres.stop("fast")
        time.sleep(3)
        stack.postgres.start()
        time.sleep(3)
        stack.kill_worker()
        time.sleep(5)
    stream.assert_clean()
    acknowledged = stream.acknowledged()
    retried = [key for key, record in stream.records.items() if len(record.answers) > 1]
    assert retried, stream.statuses()  # the faults did make clients retry
    assert len(set(acknowledged.values())) == len(acknowledged)  # one order per key
    assert set(acknowledged.values()) == stack.order_ids()  # and no order without a key

    def all_completed() -> bool:
        return set(stack.statuses().values()) == {"completed"}

    wait_until(all_completed, 240, lambda: f"{stack.statuses()}\n{stack.logs()}")
    moves = stack.moves()
    assert set(moves) == {(o, s) for o in acknowledged.values() for s in STEPS}
    assert set(moves.values()) == {1}
