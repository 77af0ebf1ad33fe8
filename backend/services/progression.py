"""The Beat jobs that move orders along the workflow, and the validation consumer.

Every job is one edge of the workflow run with the bounded-batch runner: a batch is one
unit of work that claims up to `batch_size` orders (`FOR UPDATE SKIP LOCKED` on
PostgreSQL, so two workers running the same job take disjoint orders; SQLite has a single
writer), moves them (history row and outbox event in the same transaction) and commits. A
crash loses at most the uncommitted batch, which the next tick claims again.

Jobs whose every order goes to one status without giving stock back (`BatchJob`:
auto_approve, start_processing, complete_processing) move a batch set-based: the workflow's
rule (`workflow.batch_move`) applied by the repository, claim, move, history and events in
one statement on PostgreSQL (ADR 0019). validate_pending (`Job`) decides per order and may
give stock back: it loads the claimed orders and moves each with the compare-and-set
transition, which makes a second attempt at a moved order a no-op.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from backend.domain.events import ORDER_CREATED, ORDER_VALIDATION_REQUESTED, DomainEvent
from backend.domain.orders import ClaimFilter, Order, OrderStatus
from backend.domain.ports import Clock, Transaction, UnitOfWorkFactory
from backend.services.batches import BatchBudget, run_batches
from backend.services.order_workflow import OrderWorkflow, WorkflowPolicy

S = OrderStatus

Claim = Callable[[Transaction, datetime, int], Awaitable[list[str]]]
Move = Callable[[Transaction, Order, datetime], Awaitable[Order | None]]


@dataclass(slots=True)
class JobReport:
    job: str
    claimed: int = 0
    moved: int = 0
    batches: int = 0
    moved_to: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Job:
    """Decides per order: claims ids, loads the orders and `move`s each."""

    name: str
    claim: Claim
    move: Move
    releases_stock: bool = False  # a move may give stock back (a rejection)


@dataclass(frozen=True, slots=True)
class BatchJob:
    """Every order it takes goes to `target` and gives no stock back: the batch moves
    set-based (`OrderWorkflow.advance_batch`), the orders `where` admits at `now`."""

    name: str
    target: OrderStatus
    where: Callable[[datetime], ClaimFilter]


def _claim(
    status: OrderStatus,
    *,
    created_age: timedelta | None = None,
    updated_age: timedelta | None = None,
    max_total: Decimal | None = None,
) -> Claim:
    async def claim(tx: Transaction, now: datetime, limit: int) -> list[str]:
        return await tx.orders.claim_ids(
            status,
            limit=limit,
            created_before=now - created_age if created_age is not None else None,
            updated_before=now - updated_age if updated_age is not None else None,
            max_total=max_total,
        )

    return claim


class WorkflowJobs:
    """Built by the Container with the unit-of-work factory, the clock and the workflow;
    `run(name)` is the body of the Beat job of that name (`worker/jobs.py`)."""

    NAMES = ("validate_pending", "auto_approve", "start_processing", "complete_processing")

    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, workflow: OrderWorkflow) -> None:
        self._uow = uow
        self._clock = clock
        self._workflow = workflow
        self.jobs = self._jobs(workflow.policy)

    def _jobs(self, policy: WorkflowPolicy) -> dict[str, Job | BatchJob]:
        jobs: tuple[Job | BatchJob, ...] = (
            # Safety net: orders whose validation never ran (lost message, dead worker).
            Job(
                "validate_pending",
                _claim(S.PENDING, created_age=policy.validation_retry_after),
                self._workflow.validate_in,
                releases_stock=True,
            ),
            BatchJob(
                "auto_approve",
                S.APPROVED,
                lambda now: ClaimFilter(
                    created_before=now - policy.grace_period,
                    max_total=policy.auto_approve_max_total,
                ),
            ),
            BatchJob("start_processing", S.PROCESSING, lambda now: ClaimFilter()),
            BatchJob(
                "complete_processing",
                S.COMPLETED,
                lambda now: ClaimFilter(updated_before=now - policy.processing_time),
            ),
        )
        return {job.name: job for job in jobs}

    async def run(self, name: str, *, max_batches: int | None = None) -> JobReport:
        """Batches until one comes back short (nothing left) or the batch budget is spent."""
        return await self.run_job(self.jobs[name], max_batches=max_batches)

    async def run_job(self, job: Job | BatchJob, *, max_batches: int | None = None) -> JobReport:
        policy = self._workflow.policy
        report = JobReport(job=job.name)

        async def batch(limit: int) -> int:
            return await self._run_batch(job, limit, report)

        size, lanes = policy.batch_size, 1
        if isinstance(job, BatchJob):
            size, lanes = policy.move_batch_size, policy.move_lanes
        budget = BatchBudget(size, policy.max_batches if max_batches is None else max_batches)
        report.batches = (await run_batches(batch, budget, lanes)).batches
        return report

    async def _run_batch(self, job: Job | BatchJob, limit: int, report: JobReport) -> int:
        if isinstance(job, BatchJob):
            async with self._uow() as tx:
                now = self._clock.now()
                moved = await self._workflow.advance_batch(
                    tx, job.target, limit=limit, now=now, where=job.where(now)
                )
                await tx.commit()
            count = sum(moved.values())
            report.claimed += count
            report.moved += count
            if count:
                report.moved_to[str(job.target)] = report.moved_to.get(str(job.target), 0) + count
            return count
        return await self._run_order_batch(job, limit, report)

    async def _run_order_batch(self, job: Job, limit: int, report: JobReport) -> int:
        """`releases_stock`: a move may give stock back, so the batch first locks the
        products of all its orders, in id order (no deadlock with placements)."""
        async with self._uow() as tx:
            now = self._clock.now()
            ids = await job.claim(tx, now, limit)
            if not ids:
                return 0
            loaded = await tx.orders.get_many(ids)  # the claimed rows are locked: stable
            if job.releases_stock:
                await tx.products.lock(
                    [line.product_id for order in loaded.values() for line in order.lines]
                )
            moved: list[Order] = []
            for order_id in ids:
                order = loaded.get(order_id)
                after = await job.move(tx, order, now) if order is not None else None
                if after is not None:
                    moved.append(after)
            await tx.commit()
        report.claimed += len(ids)
        report.moved += len(moved)
        for order in moved:
            report.moved_to[str(order.status)] = report.moved_to.get(str(order.status), 0) + 1
        return len(ids)


# --------------------------------------------------------------------------- consumer
@dataclass(frozen=True, slots=True)
class OrderValidationConsumer:
    """`order.created` (and an admin's `order.validation_requested`) -> validation, in the
    transaction that records the event as processed (so a redelivered event neither
    validates twice nor skips a validation)."""

    workflow: OrderWorkflow
    clock: Clock
    name: str = "workflow.validate_order"
    event_types: frozenset[str] = frozenset({ORDER_CREATED, ORDER_VALIDATION_REQUESTED})

    async def handle(self, event: DomainEvent, tx: Transaction) -> None:
        order = await tx.orders.get(event.aggregate_id)
        if order is not None:
            await self.workflow.validate_in(tx, order, self.clock.now())
