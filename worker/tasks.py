"""Tasks: thin. Ids in, a service called through the worker's container, metrics out.

Every task here may run twice (late acks re-deliver, the relay re-publishes, two Beats
schedule the same job): the services they call are idempotent by construction.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import structlog

from backend.bootstrap import Container
from backend.core.logging import get_logger
from backend.core.metrics import EVENTS_CONSUMED, OUTBOX_RELAYED, WORKFLOW_ORDERS_MOVED
from backend.domain.events import event_from_message
from backend.services import events, orders, outbox, progression
from worker import runtime
from worker.celery_app import app

log = get_logger(__name__)

DISPATCH_MAX_RETRIES = 3


@app.task(name="orderflow.heartbeat")
def heartbeat() -> None:
    """Proves the Beat -> broker -> worker -> database path end to end."""

    async def ping(container: Container) -> None:
        await container.ping_database()

    runtime.run(ping)
    log.info("worker_heartbeat")


# --------------------------------------------------------------------------- outbox
@app.task(name="orderflow.outbox.relay")
def relay_outbox() -> dict[str, Any]:
    """Kicked after each commit that wrote events, and by Beat every OUTBOX_POLL_INTERVAL."""

    async def relay(c: Container) -> outbox.RelayReport:
        return await outbox.relay_outbox(c.uow, c.event_publisher, c.clock, c.relay_policy())

    report = runtime.run(relay)
    OUTBOX_RELAYED.labels(kind="published").inc(report.published)
    OUTBOX_RELAYED.labels(kind="redelivered").inc(report.redelivered)
    if report.published or report.redelivered or report.broker_failed:
        log.info(
            "outbox_relayed",
            published=report.published,
            redelivered=report.redelivered,
            broker_failed=report.broker_failed,
        )
    return {"published": report.published, "redelivered": report.redelivered}


@app.task(name="orderflow.events.dispatch", bind=True, max_retries=DISPATCH_MAX_RETRIES)
def dispatch_event(self: Any, message: dict[str, Any]) -> None:
    """One relayed event to every subscribed consumer (task id = event id)."""
    event = event_from_message(message)
    structlog.contextvars.bind_contextvars(event_id=event.id, event_type=event.type)

    async def run(c: Container) -> events.DispatchReport:
        return await events.dispatch(event, c.event_consumers(), c.uow, c.clock)

    report = runtime.run(run)
    for name in report.handled:
        EVENTS_CONSUMED.labels(consumer=name, outcome="handled").inc()
    for name in report.duplicates:
        EVENTS_CONSUMED.labels(consumer=name, outcome="duplicate").inc()
    for name, error in report.failed.items():
        EVENTS_CONSUMED.labels(consumer=name, outcome="failed").inc()
        log.warning("event_consumer_failed", consumer=name, error=repr(error))
    if report.failed:
        # Quick retries for transient failures; past them the relay's safety net re-publishes
        # the (still unhandled) event after WORKFLOW_RETRY_AFTER.
        failure = events.ConsumersFailed(event, report.failed)
        raise self.retry(exc=failure, countdown=2**self.request.retries)


# --------------------------------------------------------------------------- workflow
@app.task(name="orderflow.workflow.validate_order")
def validate_order(order_id: str) -> str | None:
    """Validate one order now (admin's POST /orders/{id}/validate); a no-op unless pending."""

    async def validate(c: Container) -> Any:
        max_total = c.settings.order_max_total
        return await orders.validate_order(c.uow(), order_id, clock=c.clock, max_total=max_total)

    order = runtime.run(validate)
    status = str(order.status) if order is not None else None
    log.info("order_validated", order_id=order_id, status=status)
    return status


def _run_workflow_job(name: str) -> dict[str, Any]:
    async def run(c: Container) -> progression.JobReport:
        return await progression.run_workflow_job(name, c.uow, c.clock, c.workflow_policy())

    report = runtime.run(run)
    WORKFLOW_ORDERS_MOVED.labels(step=name).inc(report.moved)
    if report.claimed:
        log.info("workflow_job", job=name, claimed=report.claimed, moved=report.moved)
    return {"claimed": report.claimed, "moved": report.moved, "to": report.moved_to}


@app.task(name="orderflow.workflow.validate_pending")
def validate_pending() -> dict[str, Any]:
    return _run_workflow_job("validate_pending")


@app.task(name="orderflow.workflow.auto_approve")
def auto_approve() -> dict[str, Any]:
    return _run_workflow_job("auto_approve")


@app.task(name="orderflow.workflow.start_processing")
def start_processing() -> dict[str, Any]:
    return _run_workflow_job("start_processing")


@app.task(name="orderflow.workflow.complete_processing")
def complete_processing() -> dict[str, Any]:
    return _run_workflow_job("complete_processing")


@app.task(name="orderflow.maintenance.purge_expired")
def purge_expired() -> dict[str, Any]:
    async def purge(c: Container) -> progression.PurgeReport:
        return await progression.purge_expired(c.uow, c.clock, c.workflow_policy())

    report = runtime.run(purge)
    counts = dataclasses.asdict(report)
    log.info("purged", **counts)
    return counts
