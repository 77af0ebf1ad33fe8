"""The Celery application both sides share: the API publishes with it, the worker runs it.

Configuration follows the reliability rules of ADR 0004: JSON only, late acks,
re-delivery of work whose worker died, one prefetched message per process.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import structlog
from celery import Celery
from celery.signals import before_task_publish
from kombu import Queue

QUEUES = ("default", "workflow", "notifications")
TASK_ROUTES = {
    "orderflow.workflow.*": {"queue": "workflow"},
    "orderflow.outbox.*": {"queue": "workflow"},
    "orderflow.notifications.*": {"queue": "notifications"},
}
# Longer than any task may run (hard limit below), so a slow task is never re-delivered
# to a second worker while the first still holds it.
VISIBILITY_TIMEOUT = 3600
SOFT_TIME_LIMIT = 300
HARD_TIME_LIMIT = 330


def _transport_options(broker_url: str) -> dict[str, Any]:
    if broker_url.startswith(("redis://", "rediss://")):
        return {"visibility_timeout": VISIBILITY_TIMEOUT}
    # The SQLAlchemy transport hands its options to create_engine: give it none.
    return {}


def make_celery(broker_url: str, *, always_eager: bool = False) -> Celery:
    if broker_url.startswith("sqla+sqlite:///"):
        Path(broker_url.removeprefix("sqla+sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    app = Celery("orderflow", broker=broker_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_ignore_result=True,
        result_backend=None,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        broker_connection_retry_on_startup=True,
        broker_transport_options=_transport_options(broker_url),
        task_soft_time_limit=SOFT_TIME_LIMIT,
        task_time_limit=HARD_TIME_LIMIT,
        task_default_queue="default",
        task_queues=tuple(Queue(name) for name in QUEUES),
        task_routes=TASK_ROUTES,
        task_always_eager=always_eager,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        timezone="UTC",
        enable_utc=True,
    )
    return app


@before_task_publish.connect
def _propagate_request_id(headers: dict[str, Any] | None = None, **_: Any) -> None:
    """Carry the request id of the API call into the tasks it causes."""
    if headers is None:
        return
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    if request_id and "request_id" not in headers:
        headers["request_id"] = request_id


class CeleryTaskPublisher:
    """Publishes tasks by name without importing the worker package."""

    def __init__(self, app: Celery) -> None:
        self._app = app

    async def publish(
        self, name: str, *args: Any, task_id: str | None = None, countdown: float | None = None
    ) -> None:
        # kombu producers block on I/O (SQLite or Redis): keep the event loop free.
        await asyncio.to_thread(
            self._app.send_task, name, args=list(args), task_id=task_id, countdown=countdown
        )
