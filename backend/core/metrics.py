"""Business metrics, defined once. Each area adds its series in its own block below.

Gauges declare a multiprocess mode so /metrics stays correct under several uvicorn
worker processes (PROMETHEUS_MULTIPROC_DIR).
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Counter, Gauge, Histogram

from backend.domain.events import ORDER_CREATED, ORDER_STATUS_CHANGED, DomainEvent

# --- foundation -------------------------------------------------------------
DEPENDENCY_ERRORS = Counter(
    "dependency_errors_total", "Failures reaching a backing service", ["dependency"]
)

# --- identity ---------------------------------------------------------------
AUTH_EVENTS = Counter(
    "auth_events_total",
    "Authentication events by outcome (login, token, refresh, logout, register, password)",
    ["event", "outcome"],
)

# --- rate limiting ----------------------------------------------------------
RATE_LIMITED_REQUESTS = Counter(
    "rate_limited_requests", "Requests refused with 429, by the policy that refused", ["policy"]
)
RATE_LIMIT_STORAGE_ERRORS = Counter(
    "rate_limit_storage_errors",
    "Requests let through unchecked because the rate-limit storage (Redis) failed",
)
# Set by every readiness probe; the latest answer of any worker process is the pod's state.
READINESS_CHECKS = Gauge(
    "readiness_check_ok",
    "Last readiness result per dependency check (1 ok, 0 failed)",
    ["check"],
    multiprocess_mode="mostrecent",
)

# --- catalogue: tiered cache ------------------------------------------------
CACHE_REQUESTS = Counter(
    "cache_requests_total",
    "Cache lookups by namespace, tier (l1, l2) and result (hit, miss, error)",
    ["namespace", "tier", "result"],
)
CACHE_REDIS_ERRORS = Counter(
    "cache_redis_errors_total",
    "Redis failures the cache degraded around (served from L1 or the database)",
    ["operation"],
)

# --- workers (issue 6) ------------------------------------------------------
# Worker series are written by the prefork children and served, summed, on WORKER_METRICS_PORT.
WORKER_TASKS = Counter(
    "worker_tasks_total", "Celery tasks finished, by task name and outcome", ["task", "outcome"]
)
WORKER_TASK_DURATION = Histogram(
    "worker_task_duration_seconds",
    "Run time of Celery tasks",
    ["task"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
WORKFLOW_ORDERS_MOVED = Counter(
    "workflow_orders_moved_total", "Orders a workflow job moved to its next status", ["step"]
)
OUTBOX_RELAYED = Counter(
    "outbox_events_relayed_total",
    "Outbox events handed to the broker (kind: published first time, or redelivered)",
    ["kind"],
)
EVENTS_CONSUMED = Counter(
    "events_consumed_total",
    "Event deliveries to consumers (outcome: handled, duplicate, failed)",
    ["consumer", "outcome"],
)
WEBHOOK_DELIVERIES = Counter(
    "webhook_deliveries_total",
    "Webhook delivery attempts by what they came to (outcome: succeeded; retrying, when "
    "another attempt is scheduled; failed, when none is: 410, attempts spent, endpoint "
    "disabled)",
    ["outcome"],
)
# Served by the API (refreshed in the background, every API process computes the same value).
OUTBOX_PENDING = Gauge(
    "outbox_pending_events",
    "Outbox events not yet handed to the broker",
    multiprocess_mode="livemax",
)
OUTBOX_OLDEST_AGE = Gauge(
    "outbox_oldest_pending_age_seconds",
    "Age of the oldest outbox event not yet handed to the broker",
    multiprocess_mode="livemax",
)

# --- notifications ----------------------------------------------------------
NOTIFICATIONS_CREATED = Counter(
    "notifications_created_total", "In-app notifications created (committed)"
)
EMAILS_SENT = Counter(
    "emails_sent_total",
    "Email send attempts by outcome (sent, retry, failed)",
    ["outcome"],
)
SSE_CONNECTIONS = Gauge(
    "sse_connections",
    "Notification streams open now",
    multiprocess_mode="livesum",
)

# --- orders -----------------------------------------------------------------
# Counted after the commit of each outbox event (the event recorder registers it with
# `on_commit`), so a rolled-back placement or a lost compare-and-set is never counted.
ORDERS_CREATED = Counter("orders_created_total", "Orders placed (committed)")
ORDER_TRANSITIONS = Counter(
    "order_transitions_total",
    "Committed order status changes",
    ["from_status", "to_status", "actor"],
)
INSUFFICIENT_STOCK = Counter(
    "insufficient_stock_total", "Order placements refused because stock was short"
)


def observe_order_events(events: Iterable[DomainEvent]) -> None:
    for event in events:
        if event.type == ORDER_CREATED:
            ORDERS_CREATED.inc()
        elif event.type == ORDER_STATUS_CHANGED:
            payload = event.payload
            ORDER_TRANSITIONS.labels(
                from_status=str(payload.get("from_status")),
                to_status=str(payload.get("to_status")),
                actor=str(payload.get("actor")),
            ).inc()


def observe_transitions(from_status: str, to_status: str, actor: str, count: int) -> None:
    """`count` committed status changes at once (a set-based batch)."""
    ORDER_TRANSITIONS.labels(from_status=from_status, to_status=to_status, actor=actor).inc(count)
