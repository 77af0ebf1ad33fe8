"""SIGTERM to `python -m backend run` while customers place orders: every request the API
had begun is completed and answered, and every process exits.

A connection the kernel accepted but whose request uvicorn had not yet read is closed
without an answer when shutdown begins (a FIN, or a reset when the request's bytes were
still unread, or when it was still in the listen backlog): that request never reached the
application, which the database proves: the orders it holds are exactly the acknowledged
ones (an order placed but not acknowledged would be a request cut off mid-way)."""

from __future__ import annotations

import signal
import time

import pytest

from tests.e2e.processes import alive, children_of
from tests.faults.conftest import FaultStack
from tests.faults.shop import OrderStream, Shop

pytestmark = [pytest.mark.faults, pytest.mark.slow]

# Refused at connect (no longer listening), or closed or reset before any byte of an answer.
NOT_BEGUN = {"ConnectError", "RemoteProtocolError", "ReadError"}


def test_sigterm_under_load_answers_every_accepted_request(stack: FaultStack) -> None:
    shop = Shop.open(stack.base, stock=100_000)
    descendants = children_of(stack.supervisor.pid)
    stream = OrderStream(shop, clients=6, readers=2)
    with stream:
        time.sleep(4)
        stack.supervisor.send_signal(signal.SIGTERM)
        assert stack.supervisor.wait(timeout=30) == 0
        stream.stop(abandon=True)
    answers = stream.answers()
    cut_off = [a for a in answers if a.status is None and a.error not in NOT_BEGUN]
    assert not cut_off, cut_off[:5]
    assert not [a for a in answers if a.status is not None and a.status >= 500]
    assert not any(alive(pid) for pid in descendants)
    acknowledged = set(stream.acknowledged().values())
    assert acknowledged and acknowledged == stack.order_ids()
