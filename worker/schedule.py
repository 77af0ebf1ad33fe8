"""Celery Beat schedule. Intervals come from settings (seconds in tests, minutes in production).

Each entry expires after its own interval: a tick still queued when the next one is due is
dropped rather than piling up behind a slow or absent worker (the next tick does the work).
"""

from __future__ import annotations

from typing import Any

from backend.core.config import Settings

WORKFLOW_JOBS = ("validate_pending", "auto_approve", "start_processing", "complete_processing")


def _every(task: str, seconds: float) -> dict[str, Any]:
    return {"task": task, "schedule": seconds, "options": {"expires": seconds}}


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    schedule = {
        "heartbeat": _every("orderflow.heartbeat", settings.heartbeat_interval),
        "relay_outbox": _every("orderflow.outbox.relay", settings.outbox_poll_interval),
        "purge_expired": _every("orderflow.maintenance.purge_expired", settings.purge_interval),
    }
    for job in WORKFLOW_JOBS:
        schedule[job] = _every(f"orderflow.workflow.{job}", settings.order_progression_interval)
    return schedule
