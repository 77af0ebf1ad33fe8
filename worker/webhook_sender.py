"""The webhook sender of a worker process: a daemon thread with an event loop and a
container of its own, running the deliverer whenever it is woken.

The Celery task (kicked after commits, ticked by Beat) only wakes this thread and returns:
a send waits on a receiver for up to WEBHOOK_TIMEOUT, and a task doing that would hold a
pool process for as long, so a few hung receivers would stop the dispatch of new events
(and with it every other endpoint's deliveries). Started lazily in the pool process that
first needs it (never before the fork); a sender that dies with its process loses its
leases, and the rows are due again when the leases end (ADR 0016).
"""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any

from celery.signals import worker_process_shutdown

from backend.bootstrap import build_container
from backend.core.config import get_settings
from backend.core.logging import get_logger

log = get_logger(__name__)

IDLE_CHECK_SECONDS = 1.0
STOP_TIMEOUT_SECONDS = 5.0


class WebhookSenderThread:
    def __init__(self) -> None:
        self.pid = os.getpid()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, name="webhook-sender", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(STOP_TIMEOUT_SECONDS)

    def _main(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        from worker.celery_app import app

        container = await build_container(get_settings(), celery=app)
        try:
            while not self._stop.is_set():
                if not await asyncio.to_thread(self._wake.wait, IDLE_CHECK_SECONDS):
                    continue
                self._wake.clear()
                await self._deliver(container)
        finally:
            await container.aclose()

    async def _deliver(self, container: Any) -> None:
        try:
            run = await container.webhook_deliverer.deliver_due()
        except Exception:  # the database may be down: the next wake-up tries again
            log.warning("webhook_delivery_run_failed", exc_info=True)
            return
        if run.sent:
            log.info("webhooks_delivered", **run.outcomes)


_sender: dict[str, WebhookSenderThread] = {}


def wake() -> None:
    """Wake this process's sender, starting it on first use (or after a fork)."""
    sender = _sender.get("current")
    if sender is None or sender.pid != os.getpid():
        sender = _sender["current"] = WebhookSenderThread()
    sender.wake()


@worker_process_shutdown.connect
def _stop_sender(**_: Any) -> None:
    sender = _sender.pop("current", None)
    if sender is not None and sender.pid == os.getpid():
        sender.stop()
