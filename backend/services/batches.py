"""The one bounded-batch runner: the relay, the workflow jobs, the purge and every later
backlog (deliveries) drain their work with it (ADR 0014).

A batch is one unit of work that takes at most `size` rows (`FOR UPDATE SKIP LOCKED` on
PostgreSQL, so two workers take disjoint rows) and commits. The runner repeats it until a
batch comes back short (nothing left) or `max_batches` are spent: a run never holds one
long transaction and never runs unbounded; what is left waits for the next tick.

With `lanes` > 1 that many batches run at once, each lane a loop of its own over the one
budget, as if that many workers ran the job: a lane stops at its first short batch (what
it did not take another lane holds, or nothing is left), the run when every lane stopped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

# One batch: given the row limit, do the work in a unit of work of its own and return how
# many rows it took. Returning fewer than the limit ends the run (nothing left, or a
# dependency refused: the next tick retries).
Batch = Callable[[int], Awaitable[int]]


@dataclass(frozen=True, slots=True)
class BatchBudget:
    size: int = 200
    max_batches: int = 50


@dataclass(frozen=True, slots=True)
class BatchRun:
    batches: int  # batches that took at least one row
    taken: int  # rows taken over all batches


async def run_batches(batch: Batch, budget: BatchBudget, lanes: int = 1) -> BatchRun:
    started = batches = taken = 0

    async def lane() -> None:
        nonlocal started, batches, taken
        while started < budget.max_batches:
            started += 1
            count = await batch(budget.size)
            taken += count
            if count:
                batches += 1
            if count < budget.size:
                return

    if lanes <= 1:
        await lane()
    else:
        await asyncio.gather(*(lane() for _ in range(lanes)))
    return BatchRun(batches=batches, taken=taken)
