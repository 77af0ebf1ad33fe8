"""The supervisor's restart delays: doubling per quick death, capped, quick again after a
child that stayed up."""

from __future__ import annotations

from backend.supervisor import Backoff


def test_delays_double_up_to_the_ceiling() -> None:
    backoff = Backoff(first=1, factor=2, ceiling=30)
    assert [backoff.delay(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]
