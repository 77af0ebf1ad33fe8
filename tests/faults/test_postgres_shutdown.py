"""PostgreSQL goes through a smart shutdown (new sessions refused with 57P03 while the
pooled ones go on), then a fast one (every session ended, 57P01), stays down, and comes back,
while customers read and place orders: every failure is a 503 with Retry-After answered
within DB_CONNECT_TIMEOUT, every acknowledged order is in the database afterwards, once, and
the same API and worker processes serve again without a restart."""

from __future__ import annotations

import time

import pytest

from tests.faults.conftest import DB_CONNECT_TIMEOUT, FaultStack
from tests.faults.shop import OrderStream, Shop

pytestmark = [pytest.mark.faults, pytest.mark.slow]

# A refusal is immediate; a silent server is bounded by the connect timeout. The margin
# is for a loaded 2-core machine, not for waiting on the database.
ANSWER_BOUND = DB_CONNECT_TIMEOUT + 2


def test_reads_and_orders_through_a_postgres_shutdown_and_restart(stack: FaultStack) -> None:
    shop = Shop.open(stack.base, stock=100_000)
    api, worker = stack.api_pid(), stack.worker_pid()
    with OrderStream(shop, clients=4, readers=2) as stream:
        time.sleep(4)
        outage_started = time.monotonic()
        stack.postgres.stop("smart", wait=False)
        time.sleep(5)
        stack.postgres.stop("fast")
        time.sleep(5)
        stack.postgres.start()
        outage_ended = time.monotonic()
        time.sleep(8)
    stream.assert_clean()
    answers = stream.answers()
    unavailable = [a for a in answers if a.status == 503]
    assert unavailable, stream.statuses()  # the outage was seen, and answered as such
    assert max(a.seconds for a in unavailable) < ANSWER_BOUND
    recovered = [a for a in answers if a.started > outage_ended + 3]
    assert recovered and all(a.status in (200, 201) for a in recovered), stream.statuses()
    before = [a for a in answers if a.started < outage_started]
    assert before and all(a.status in (200, 201) for a in before)
    acknowledged = stream.acknowledged()
    assert set(acknowledged.values()) == stack.order_ids()  # every 201 is there, no other
    assert (stack.api_pid(), stack.worker_pid()) == (api, worker)  # recovered in place
