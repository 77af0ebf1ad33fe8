"""The Beat jobs that move orders along the workflow, and the validation consumer.

Every job is one edge of the workflow run over bounded batches. A batch is one unit of
work: claim up to `batch_size` order ids (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so two
workers running the same job take disjoint orders; SQLite has a single writer), move each
with the orders service's compare-and-set transition (history row and outbox event in the
same transaction), commit. A crash loses at most the uncommitted batch, which the next
tick claims again; the CAS makes a second attempt at a moved order a no-op.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from backend.domain.errors import Conflict
from backend.domain.events import ORDER_CREATED, DomainEvent
from backend.domain.orders import Order, OrderStatus
from backend.domain.ports import Clock, UnitOfWork, UnitOfWorkFactory
from backend.domain.workflow import Actor
from backend.services import orders as orders_service

S = OrderStatus


@dataclass(frozen=True, slots=True)
class WorkflowPolicy:
    batch_size: int = 200
    max_batches: int = 50
    grace_period: timedelta = timedelta(seconds=120)
    processing_time: timedelta = timedelta(seconds=120)
    auto_approve_max_total: Decimal = Decimal("1000.00")
    max_total: Decimal = Decimal("100000.00")
    validation_retry_after: timedelta = timedelta(seconds=60)
    idempotency_ttl: timedelta = timedelta(hours=24)
    outbox_retention: timedelta = timedelta(days=7)


@dataclass(slots=True)
class JobReport:
    job: str
    claimed: int = 0
    moved: int = 0
    batches: int = 0
    moved_to: dict[str, int] = field(default_factory=dict)


Claim = Callable[[UnitOfWork, datetime, int], Awaitable[list[str]]]
Move = Callable[[UnitOfWork, Order, datetime], Awaitable[Order | None]]


async def run_job(
    name: str,
    uow_factory: UnitOfWorkFactory,
    clock: Clock,
    policy: WorkflowPolicy,
    claim: Claim,
    move: Move,
    *,
    releases_stock: bool = False,
    max_batches: int | None = None,
) -> JobReport:
    """Batches until one comes back short (nothing left) or the batch budget is spent.
    `releases_stock`: a move may give stock back, so each batch first locks the products
    of all its orders, in id order (ProductRepository.lock: no deadlock with placements)."""
    report = JobReport(job=name)
    budget = policy.max_batches if max_batches is None else max_batches
    while report.batches < budget:
        claimed = await _run_batch(
            uow_factory, clock, policy.batch_size, claim, move, report, releases_stock
        )
        if claimed:
            report.batches += 1
        if claimed < policy.batch_size:
            break
    return report


async def _run_batch(
    uow_factory: UnitOfWorkFactory,
    clock: Clock,
    batch_size: int,
    claim: Claim,
    move: Move,
    report: JobReport,
    releases_stock: bool,
) -> int:
    async with uow_factory() as uow:
        now = clock.now()
        ids = await claim(uow, now, batch_size)
        if not ids:
            return 0
        loaded = await uow.orders.get_many(ids)  # the claimed rows are locked: a stable read
        if releases_stock:
            await uow.products.lock(
                [line.product_id for order in loaded.values() for line in order.lines]
            )
        moved: list[Order] = []
        for order_id in ids:
            order = loaded.get(order_id)
            after = await move(uow, order, now) if order is not None else None
            if after is not None:
                moved.append(after)
        await uow.commit()
    report.claimed += len(ids)
    report.moved += len(moved)
    for order in moved:
        report.moved_to[str(order.status)] = report.moved_to.get(str(order.status), 0) + 1
    return len(ids)


async def system_transition(
    uow: UnitOfWork, order: Order, target: OrderStatus, now: datetime, reason: str | None = None
) -> Order | None:
    """The system's move of one order inside the caller's unit of work; None when the order
    is no longer where the job found it (another actor won the compare-and-set)."""
    try:
        return await orders_service.apply_transition(
            uow, order, target, actor=Actor.SYSTEM, reason=reason, now=now
        )
    except Conflict:  # IllegalTransition included: cancelled or moved meanwhile
        return None


async def validate_in(
    uow: UnitOfWork, order: Order, now: datetime, max_total: Decimal
) -> Order | None:
    """PRODUCT.md's validation inside the caller's unit of work (batch and consumer alike):
    validated, or rejected with the reason (the transition releases the stock)."""
    if order.status is not S.PENDING:
        return None
    reason = await orders_service.validation_failure(uow, order, max_total)
    target = S.VALIDATED if reason is None else S.REJECTED
    return await system_transition(uow, order, target, now, reason)


# --------------------------------------------------------------------------- the jobs
def _claim(
    status: OrderStatus,
    *,
    created_age: timedelta | None = None,
    updated_age: timedelta | None = None,
    max_total: Decimal | None = None,
) -> Claim:
    async def claim(uow: UnitOfWork, now: datetime, limit: int) -> list[str]:
        return await uow.orders.claim_ids(
            status,
            limit=limit,
            created_before=now - created_age if created_age is not None else None,
            updated_before=now - updated_age if updated_age is not None else None,
            max_total=max_total,
        )

    return claim


def _advance(target: OrderStatus) -> Move:
    async def move(uow: UnitOfWork, order: Order, now: datetime) -> Order | None:
        return await system_transition(uow, order, target, now)

    return move


@dataclass(frozen=True, slots=True)
class Job:
    name: str
    claim: Claim
    move: Move
    releases_stock: bool = False  # a move may give stock back (a rejection)


def workflow_jobs(policy: WorkflowPolicy) -> dict[str, Job]:
    """The Beat jobs by name (the Celery task is `orderflow.workflow.<name>`)."""

    async def validate(uow: UnitOfWork, order: Order, now: datetime) -> Order | None:
        return await validate_in(uow, order, now, policy.max_total)

    jobs = (
        # Safety net: orders whose validation task never ran (lost message, dead worker).
        Job(
            "validate_pending",
            _claim(S.PENDING, created_age=policy.validation_retry_after),
            validate,
            releases_stock=True,
        ),
        Job(
            "auto_approve",
            _claim(
                S.VALIDATED,
                created_age=policy.grace_period,
                max_total=policy.auto_approve_max_total,
            ),
            _advance(S.APPROVED),
        ),
        Job("start_processing", _claim(S.APPROVED), _advance(S.PROCESSING)),
        Job(
            "complete_processing",
            _claim(S.PROCESSING, updated_age=policy.processing_time),
            _advance(S.COMPLETED),
        ),
    )
    return {job.name: job for job in jobs}


async def run_workflow_job(
    name: str,
    uow_factory: UnitOfWorkFactory,
    clock: Clock,
    policy: WorkflowPolicy,
    *,
    max_batches: int | None = None,
) -> JobReport:
    job = workflow_jobs(policy)[name]
    return await run_job(
        name,
        uow_factory,
        clock,
        policy,
        job.claim,
        job.move,
        releases_stock=job.releases_stock,
        max_batches=max_batches,
    )


# --------------------------------------------------------------------------- consumer
@dataclass(frozen=True, slots=True)
class OrderValidationConsumer:
    """`order.created` -> validation, in the transaction that records the event as processed
    (so a redelivered event neither validates twice nor skips a validation)."""

    clock: Clock
    max_total: Decimal
    name: str = "workflow.validate_order"
    event_types: frozenset[str] = frozenset({ORDER_CREATED})

    async def handle(self, event: DomainEvent, uow: UnitOfWork) -> None:
        order = await uow.orders.get(event.aggregate_id)
        if order is not None:
            await validate_in(uow, order, self.clock.now(), self.max_total)


# --------------------------------------------------------------------------- purge
@dataclass(slots=True)
class PurgeReport:
    idempotency_keys: int = 0
    refresh_tokens: int = 0
    outbox_events: int = 0


Purge = Callable[[UnitOfWork, datetime, int], Awaitable[int]]


async def purge_expired(
    uow_factory: UnitOfWorkFactory, clock: Clock, policy: WorkflowPolicy
) -> PurgeReport:
    """Idempotency keys past their 24 h, expired refresh tokens (a spent one that has not
    expired stays: presenting it again is how token theft is detected), and outbox events
    every consumer handled more than `outbox_retention` ago."""

    async def keys(uow: UnitOfWork, now: datetime, limit: int) -> int:
        return await uow.idempotency.purge(now - policy.idempotency_ttl, limit)

    async def tokens(uow: UnitOfWork, now: datetime, limit: int) -> int:
        return await uow.refresh_tokens.purge(now, limit)

    async def events(uow: UnitOfWork, now: datetime, limit: int) -> int:
        return await uow.outbox.purge_handled(now - policy.outbox_retention, limit)

    return PurgeReport(
        idempotency_keys=await _purge_in_batches(uow_factory, clock, policy, keys),
        refresh_tokens=await _purge_in_batches(uow_factory, clock, policy, tokens),
        outbox_events=await _purge_in_batches(uow_factory, clock, policy, events),
    )


async def _purge_in_batches(
    uow_factory: UnitOfWorkFactory, clock: Clock, policy: WorkflowPolicy, purge: Purge
) -> int:
    """Bounded batches, one commit each: never one long transaction holding the table."""
    total = 0
    for _ in range(policy.max_batches):
        async with uow_factory() as uow:
            deleted = await purge(uow, clock.now(), policy.batch_size)
            await uow.commit()
        total += deleted
        if deleted < policy.batch_size:
            break
    return total
