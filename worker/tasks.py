"""Tasks: thin. Ids in, a service called through the worker's container, metrics out.

One Celery task per Beat job of `worker/jobs.py` (name, schedule and body live there),
plus the tasks nothing schedules: the dispatch of one relayed event, the send of one
email. Task names come from `backend/core/tasks.py`. Every task here may run twice (late
acks re-deliver, the relay re-publishes, two Beats schedule the same job): the services
they call are idempotent by construction.
"""

from __future__ import annotations

from typing import Any

import structlog

from backend.bootstrap import Container
from backend.core import tasks as names
from backend.core.logging import get_logger
from backend.core.metrics import EVENTS_CONSUMED
from backend.domain.events import event_from_message
from backend.services import events
from worker import runtime
from worker.celery_app import app
from worker.jobs import JOBS, BeatJob, send_email

log = get_logger(__name__)

DISPATCH_MAX_RETRIES = 3


def _register(job: BeatJob) -> None:
    def run_job() -> Any:
        return runtime.run(job.body)

    run_job.__name__ = run_job.__qualname__ = job.name
    run_job.__doc__ = job.body.__doc__
    app.task(name=job.task)(run_job)


for _job in JOBS:
    _register(_job)


@app.task(name=names.DISPATCH_EVENT, bind=True, max_retries=DISPATCH_MAX_RETRIES)
def dispatch_event(self: Any, message: dict[str, Any]) -> None:
    """One relayed event to every subscribed consumer (task id = event id)."""
    event = event_from_message(message)
    structlog.contextvars.bind_contextvars(event_id=event.id, event_type=event.type)

    async def run(c: Container) -> events.DispatchReport:
        return await c.event_dispatcher.dispatch(event)

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


@app.task(name=names.SEND_EMAIL)
def send_one_email(send_id: str) -> str:
    """One attempt at one recorded email (`worker/jobs.py: send_email`)."""
    structlog.contextvars.bind_contextvars(email_send_id=send_id)

    async def run(c: Container) -> str:
        return await send_email(c, send_id)

    return runtime.run(run)
