"""The Celery application both sides share: the API publishes with it, the worker runs it.

Configuration follows the reliability rules of ADR 0004 and ADR 0010: JSON only, late acks,
re-delivery of work whose worker died, one prefetched message per process, time limits
below the broker's visibility timeout.
"""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import structlog
from celery import Celery
from celery.signals import before_task_publish, worker_process_init
from kombu import Queue

from backend.core.tasks import QUEUES, TASK_ROUTES
from backend.infrastructure.messaging.redis_transport import guard_collected_transport
from backend.infrastructure.messaging.sqlite_broker import embedded_broker_url

log = structlog.get_logger(__name__)

# Longer than any task may run (hard limit below), so a slow task is never re-delivered
# to a second worker while the first still holds it.
VISIBILITY_TIMEOUT = 3600
SOFT_TIME_LIMIT = 300
HARD_TIME_LIMIT = 330
SQLITE_BUSY_TIMEOUT = 30
# A failed publish is retried briefly, then left to the outbox poll (events) or reported.
PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}


def _transport_options(broker_url: str, key_prefix: str) -> dict[str, Any]:
    if broker_url.startswith(("redis://", "rediss://")):
        return {
            "visibility_timeout": VISIBILITY_TIMEOUT,
            "global_keyprefix": key_prefix,
            "socket_timeout": 5,
            "socket_connect_timeout": 2,
            "health_check_interval": 10,
        }
    if broker_url.startswith("sqla+sqlite"):
        # The SQLAlchemy transport hands these to `create_engine`: several processes share
        # the file, so wait for its lock instead of failing with "database is locked".
        return {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT}}
    return {}


def _prepare_sqlite_broker(broker_url: str) -> None:
    """Create the broker file in WAL mode (persistent): readers do not block the writer."""
    path = Path(broker_url.removeprefix("sqla+sqlite:///"))
    path.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")


def make_celery(broker_url: str, *, always_eager: bool = False, key_prefix: str = "") -> Celery:
    if broker_url.startswith("sqla+sqlite:///"):
        _prepare_sqlite_broker(broker_url)
    if broker_url.startswith(("redis://", "rediss://")):
        guard_collected_transport()  # a lost Redis must not kill the worker (ADR 0017)
    app = Celery("orderflow", broker=embedded_broker_url(broker_url), set_as_current=False)
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
        broker_connection_max_retries=None,  # a worker outlives a broker restart
        broker_transport_options=_transport_options(broker_url, key_prefix),
        task_publish_retry_policy=PUBLISH_RETRY_POLICY,
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


@worker_process_init.connect
def _forget_inherited_broker_engines(**_: Any) -> None:
    """The SQLAlchemy transport caches its engines on a class: a forked pool child must
    open its own SQLite connections, never reuse the parent's (SQLite forbids that)."""
    from kombu.transport.sqlalchemy import Channel

    for engine, _session in list(Channel._engines.values()):
        engine.dispose(close=False)
    Channel._engines.clear()


class CeleryTaskPublisher:
    """Publishes tasks by name without importing the worker package."""

    def __init__(self, app: Celery) -> None:
        self._app = app

    async def publish(
        self,
        name: str,
        *args: Any,
        task_id: str | None = None,
        countdown: float | None = None,
        **options: Any,
    ) -> None:
        # kombu producers block on I/O (SQLite or Redis): keep the event loop free.
        await asyncio.to_thread(
            self._app.send_task,
            name,
            args=list(args),
            task_id=task_id,
            countdown=countdown,
            **options,
        )
