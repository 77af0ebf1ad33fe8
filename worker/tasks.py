"""Tasks: thin. Ids in, a service called through the worker's container."""

from __future__ import annotations

from backend.bootstrap import Container
from backend.core.logging import get_logger
from worker import runtime
from worker.celery_app import app

log = get_logger(__name__)


@app.task(name="orderflow.heartbeat")
def heartbeat() -> None:
    """Proves the Beat -> broker -> worker -> database path end to end."""

    async def ping(container: Container) -> None:
        await container.ping_database()

    runtime.run(ping)
    log.info("worker_heartbeat")


@app.task(name="orderflow.outbox.relay")
def relay_outbox() -> None:
    """Placeholder consumer of the after-commit kick until the workflow issue lands."""
    log.debug("relay_outbox_requested")
