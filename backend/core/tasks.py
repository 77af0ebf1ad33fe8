"""Every Celery task name, once.

The API and the composition root publish by these names, the Celery routes match them and
`worker/jobs.py` (the Beat jobs: name, schedule and body) and `worker/tasks.py` register
them: no other module spells a task name (ADR 0014). A new task adds its constant here;
a periodic one also adds its `Job` to `worker/jobs.py`.
"""

from __future__ import annotations

HEARTBEAT = "orderflow.heartbeat"
RELAY_OUTBOX = "orderflow.outbox.relay"
PURGE_EXPIRED = "orderflow.maintenance.purge_expired"
DELIVER_WEBHOOKS = "orderflow.webhooks.deliver"

NOTIFICATIONS_PREFIX = "orderflow.notifications."
SEND_EMAIL = NOTIFICATIONS_PREFIX + "send_email"
DELIVER_DUE_EMAILS = NOTIFICATIONS_PREFIX + "deliver_due_emails"

WORKFLOW_PREFIX = "orderflow.workflow."
VALIDATE_PENDING = WORKFLOW_PREFIX + "validate_pending"
AUTO_APPROVE = WORKFLOW_PREFIX + "auto_approve"
START_PROCESSING = WORKFLOW_PREFIX + "start_processing"
COMPLETE_PROCESSING = WORKFLOW_PREFIX + "complete_processing"

# Queues by task-name pattern: the workflow's jobs get a queue of their own, so a burst of
# relay runs (each dispatches its events in process) in `default` never delays them:
# workers take from their queues in turn.
QUEUES = ("default", "workflow", "notifications")
TASK_ROUTES = {
    WORKFLOW_PREFIX + "*": {"queue": "workflow"},
    "orderflow.outbox.*": {"queue": "default"},
    "orderflow.maintenance.*": {"queue": "default"},
    NOTIFICATIONS_PREFIX + "*": {"queue": "notifications"},
    # Webhook sends wait on receivers: never in the queues of the workflow and the relay.
    "orderflow.webhooks.*": {"queue": "notifications"},
}
