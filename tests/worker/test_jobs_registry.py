"""The one registry of tasks and Beat jobs: every job is scheduled and registered by its
name, every task name the code publishes is one the worker runs."""

from __future__ import annotations

from pathlib import Path

from backend.core import tasks as names
from tests.support import make_settings


def test_every_beat_job_is_scheduled_on_its_interval_and_registered_as_a_task(
    tmp_path: Path,
) -> None:
    import worker.tasks  # noqa: F401  (registers the tasks)
    from worker.celery_app import app
    from worker.jobs import JOBS, beat_schedule

    settings = make_settings(
        tmp_path,
        "sqlite+aiosqlite:///:memory:",
        heartbeat_interval=7,
        outbox_poll_interval=3,
        purge_interval=11,
        order_progression_interval=5,
        webhook_poll_interval=13,
        email_delivery_interval=17,
    )
    schedule = beat_schedule(settings)
    assert {name: (e["task"], e["schedule"], e["options"]) for name, e in schedule.items()} == {
        "heartbeat": (names.HEARTBEAT, 7, {"expires": 7}),
        "relay_outbox": (names.RELAY_OUTBOX, 3, {"expires": 3}),
        "purge_expired": (names.PURGE_EXPIRED, 11, {"expires": 11}),
        "deliver_webhooks": (names.DELIVER_WEBHOOKS, 13, {"expires": 13}),
        "deliver_due_emails": (names.DELIVER_DUE_EMAILS, 17, {"expires": 17}),
        "validate_pending": (names.VALIDATE_PENDING, 5, {"expires": 5}),
        "auto_approve": (names.AUTO_APPROVE, 5, {"expires": 5}),
        "start_processing": (names.START_PROCESSING, 5, {"expires": 5}),
        "complete_processing": (names.COMPLETE_PROCESSING, 5, {"expires": 5}),
    }
    published = {  # every task name constant (the workflow prefix is only a prefix)
        value
        for key, value in vars(names).items()
        if key.isupper()
        and isinstance(value, str)
        and value.startswith("orderflow.")
        and value not in (names.WORKFLOW_PREFIX, names.NOTIFICATIONS_PREFIX)
    }
    registered = {name for name in app.tasks if name.startswith("orderflow.")}
    unscheduled = {names.SEND_EMAIL}  # kicked, never on a schedule
    assert {job.task for job in JOBS} | unscheduled == published == registered
    assert "orderflow.workflow.validate_order" not in registered  # through the outbox now
