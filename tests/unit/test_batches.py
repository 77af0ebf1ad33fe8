"""The bounded-batch runner: stops on a short batch or at the budget, counts what it took."""

from __future__ import annotations

from backend.services.batches import BatchBudget, run_batches


def backlog(rows: int, calls: list[int]):  # type: ignore[no-untyped-def]
    left = [rows]

    async def batch(limit: int) -> int:
        calls.append(limit)
        taken = min(limit, left[0])
        left[0] -= taken
        return taken

    return batch


async def test_batches_run_until_one_comes_back_short() -> None:
    calls: list[int] = []
    run = await run_batches(backlog(7, calls), BatchBudget(size=3, max_batches=10))
    assert (run.batches, run.taken) == (3, 7)
    assert calls == [3, 3, 3]


async def test_an_exact_multiple_needs_one_empty_batch_to_know_it_is_done() -> None:
    calls: list[int] = []
    run = await run_batches(backlog(6, calls), BatchBudget(size=3, max_batches=10))
    assert (run.batches, run.taken, len(calls)) == (2, 6, 3)


async def test_the_budget_bounds_a_run_and_leaves_the_rest() -> None:
    calls: list[int] = []
    batch = backlog(100, calls)
    first = await run_batches(batch, BatchBudget(size=10, max_batches=2))
    assert (first.batches, first.taken) == (2, 20)
    rest = await run_batches(batch, BatchBudget(size=10, max_batches=100))
    assert rest.taken == 80


async def test_no_budget_runs_nothing() -> None:
    calls: list[int] = []
    run = await run_batches(backlog(5, calls), BatchBudget(size=3, max_batches=0))
    assert (run.batches, run.taken, calls) == (0, 0, [])


async def test_lanes_share_one_budget_and_each_stops_at_its_first_short_batch() -> None:
    calls: list[int] = []
    run = await run_batches(backlog(7, calls), BatchBudget(size=3, max_batches=10), lanes=2)
    assert (run.batches, run.taken) == (3, 7)  # 3 + 3 + 1, then an empty one ends a lane
    assert len(calls) == 4
    calls.clear()
    bounded = await run_batches(backlog(100, calls), BatchBudget(size=3, max_batches=5), lanes=3)
    assert (bounded.batches, bounded.taken, len(calls)) == (5, 15, 5)
