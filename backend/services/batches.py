"""The one bounded-batch runner: the relay, the workflow jobs, the purge and every later
backlog (deliveries) drain their work with it (ADR 0014).

A batch is one unit of work that takes at most `size` rows (`FOR UPDATE SKIP LOCKED` on
PostgreSQL, so two workers take disjoint rows) and commits. The runner repeats it until a
batch comes back short (nothing left) or `max_batches` are spent: a run never holds one
long transaction and never runs unbounded; what is left waits for the next tick.
"""

from __future__ import annotations

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


async def run_batches(batch: Batch, budget: BatchBudget) -> BatchRun:
    batches = taken = 0
    for _ in range(budget.max_batches):
        count = await batch(budget.size)
        taken += count
        if count:
            batches += 1
        if count < budget.size:
            break
    return BatchRun(batches=batches, taken=taken)
