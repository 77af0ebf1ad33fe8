"""The Beat jobs: each one's name, schedule and body in one place (ADR 0014).

`beat_schedule()` gives Beat its entries and `worker/tasks.py` registers one Celery task
per job, so a new periodic job is one `BeatJob` here (its task name in
`backend/core/tasks.py`, its use case a Container service) and nothing else. Each entry
expires after its own interval: a tick still queued when the next one is due is dropped
rather than piling up behind a slow or absent worker (the next tick does the work).
Every body may run twice at once (two Beats, a re-delivery): the services are idempotent.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from backend.bootstrap import Container
from backend.core import tasks as names
from backend.core.config import Settings
from backend.core.logging import get_logger
from backend.core.metrics import (
    EMAILS_SENT,
    EVENTS_CONSUMED,
    OUTBOX_RELAYED,
    WORKFLOW_ORDERS_MOVED,
)
from backend.services.email import DeliveryOutcome, DeliveryResult
from worker import webhook_sender

log = get_logger(__name__)

Body = Callable[[Container], Awaitable[dict[str, Any] | None]]


@dataclass(frozen=True, slots=True)
class BeatJob:
    name: str  # the Beat entry
    task: str  # the Celery task it runs (backend/core/tasks.py)
    every: Callable[[Settings], float]  # seconds between runs, from the settings
    body: Body  # what the task does, through the worker's container


async def heartbeat(c: Container) -> None:
    """Proves the Beat -> broker -> worker -> database path end to end."""
    await c.ping_database()
    log.info("worker_heartbeat")


async def relay_outbox(c: Container) -> dict[str, Any]:
    """Also kicked after each commit that wrote events (`Container.kick_relay`)."""
    report = await c.outbox_relay.relay()
    OUTBOX_RELAYED.labels(kind="published").inc(report.published)
    OUTBOX_RELAYED.labels(kind="redelivered").inc(report.redelivered)
    outcomes = (
        ("handled", report.handled),
        ("duplicate", report.duplicates),
        ("failed", report.failures),
    )
    for outcome, counts in outcomes:
        for consumer, n in counts.items():
            EVENTS_CONSUMED.labels(consumer=consumer, outcome=outcome).inc(n)
    if report.published or report.redelivered:
        log.info(
            "outbox_relayed",
            published=report.published,
            redelivered=report.redelivered,
            failed=report.failed,
            handled=dict(report.handled),
        )
    return {"published": report.published, "redelivered": report.redelivered}


def workflow_job(name: str) -> Body:
    async def run(c: Container) -> dict[str, Any]:
        report = await c.workflow_jobs.run(name)
        WORKFLOW_ORDERS_MOVED.labels(step=name).inc(report.moved)
        if report.claimed:
            log.info("workflow_job", job=name, claimed=report.claimed, moved=report.moved)
        return {"claimed": report.claimed, "moved": report.moved, "to": report.moved_to}

    return run


async def purge_expired(c: Container) -> dict[str, Any]:
    counts = dataclasses.asdict(await c.maintenance.purge_expired())
    log.info("purged", **counts)
    return counts


async def deliver_webhooks(_c: Container) -> None:
    """Wakes this process's webhook sender (worker/webhook_sender.py) and returns at once;
    also kicked after each commit that made deliveries due (`Container.kick_webhooks`)."""
    webhook_sender.wake()


async def send_email(c: Container, send_id: str) -> str:
    """One attempt at one recorded email (kicked after the commit that recorded it); a
    retryable failure kicks the next attempt for when it is due."""
    result = await c.email_delivery.deliver(send_id)
    _count_email(result)
    if result.outcome is DeliveryOutcome.RETRY and result.retry_in is not None:
        await c.kick_email(send_id, countdown=result.retry_in.total_seconds())
    return str(result.outcome)


async def deliver_due_emails(c: Container) -> dict[str, Any]:
    """The safety net: every email due now (retries, sends whose kick was lost)."""
    results = await c.email_delivery.deliver_due()
    for result in results:
        _count_email(result)
    outcomes = Counter(str(result.outcome) for result in results)
    if results:
        log.info("emails_delivered", **outcomes)
    return dict(outcomes)


def _count_email(result: DeliveryResult) -> None:
    if result.outcome is DeliveryOutcome.SKIPPED:
        return  # not due, final, or another worker's: no attempt was made
    EMAILS_SENT.labels(outcome=str(result.outcome)).inc()
    log_method = log.info if result.outcome is DeliveryOutcome.SENT else log.warning
    log_method(f"email_{result.outcome}", send_id=result.send_id, error=result.error)


def _progression(s: Settings) -> float:
    return s.order_progression_interval


JOBS: tuple[BeatJob, ...] = (
    BeatJob("heartbeat", names.HEARTBEAT, lambda s: s.heartbeat_interval, heartbeat),
    BeatJob("relay_outbox", names.RELAY_OUTBOX, lambda s: s.outbox_poll_interval, relay_outbox),
    BeatJob("purge_expired", names.PURGE_EXPIRED, lambda s: s.purge_interval, purge_expired),
    BeatJob(
        "deliver_webhooks",
        names.DELIVER_WEBHOOKS,
        lambda s: s.webhook_poll_interval,
        deliver_webhooks,
    ),
    BeatJob(
        "deliver_due_emails",
        names.DELIVER_DUE_EMAILS,
        lambda s: s.email_delivery_interval,
        deliver_due_emails,
    ),
    BeatJob(
        "validate_pending",
        names.VALIDATE_PENDING,
        _progression,
        workflow_job("validate_pending"),
    ),
    BeatJob("auto_approve", names.AUTO_APPROVE, _progression, workflow_job("auto_approve")),
    BeatJob(
        "start_processing",
        names.START_PROCESSING,
        _progression,
        workflow_job("start_processing"),
    ),
    BeatJob(
        "complete_processing",
        names.COMPLETE_PROCESSING,
        _progression,
        workflow_job("complete_processing"),
    ),
)


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    schedule = {}
    for job in JOBS:
        seconds = job.every(settings)
        schedule[job.name] = {
            "task": job.task,
            "schedule": seconds,
            "options": {"expires": seconds},
        }
    return schedule
