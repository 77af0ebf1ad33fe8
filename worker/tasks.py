"""Tasks: thin. Ids in, a service called through the worker's container, metrics out.

One Celery task per Beat job of `worker/jobs.py` (name, schedule and body live there),
plus the task nothing schedules: the send of one email. Task names come from
`backend/core/tasks.py`. Every task here may run twice (late acks re-deliver, two relays
hand an event over, two Beats schedule the same job): the services they call are
idempotent by construction.
"""

from __future__ import annotations

from typing import Any

import structlog

from backend.bootstrap import Container
from backend.core import tasks as names
from worker import runtime
from worker.celery_app import app
from worker.jobs import JOBS, BeatJob, send_email


def _register(job: BeatJob) -> None:
    def run_job() -> Any:
        return runtime.run(job.body)

    run_job.__name__ = run_job.__qualname__ = job.name
    run_job.__doc__ = job.body.__doc__
    app.task(name=job.task)(run_job)


for _job in JOBS:
    _register(_job)


@app.task(name=names.SEND_EMAIL)
def send_one_email(send_id: str) -> str:
    """One attempt at one recorded email (`worker/jobs.py: send_email`)."""
    structlog.contextvars.bind_contextvars(email_send_id=send_id)

    async def run(c: Container) -> str:
        return await send_email(c, send_id)

    return runtime.run(run)
