"""The Celery application of the worker and Beat (`celery -A worker.celery_app ...`).

Building it touches no network: the broker is contacted when the worker starts.
"""

from __future__ import annotations

import os
from typing import Any

import structlog
from celery.signals import setup_logging, task_postrun, task_prerun

from backend.bootstrap import create_celery
from backend.core.config import get_settings
from backend.core.logging import configure_logging
from worker import metrics as _metrics  # noqa: F401  (connects the metric signal handlers)
from worker.jobs import beat_schedule

settings = get_settings()
app = create_celery(settings)
app.conf.beat_schedule = beat_schedule(settings)
app.conf.include = ["worker.tasks"]


@setup_logging.connect
def _configure_logging(**_: Any) -> None:
    configure_logging(settings.log_level, settings.effective_log_format)


def request_id_of(task: Any) -> str | None:
    """The API request id the publisher put in the message headers (empty means none)."""
    if task is None:
        return None
    request_id = getattr(task.request, "request_id", None)
    if request_id is None:
        request_id = (getattr(task.request, "headers", None) or {}).get("request_id")
    return str(request_id) if request_id else None


@task_prerun.connect
def _bind_task_context(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(
        task_id=task_id,
        task=getattr(task, "name", None),
        request_id=request_id_of(task),
        pid=os.getpid(),  # which pool child ran it
    )


@task_postrun.connect
def _clear_task_context(**_: Any) -> None:
    structlog.contextvars.clear_contextvars()
