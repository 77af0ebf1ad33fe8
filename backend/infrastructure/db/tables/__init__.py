"""All tables on one MetaData. Each area keeps its tables in its own module."""

from backend.infrastructure.db.tables.base import metadata
from backend.infrastructure.db.tables.catalog import products, stock_adjustments
from backend.infrastructure.db.tables.events import outbox_events, processed_events
from backend.infrastructure.db.tables.notifications import (
    email_sends,
    notifications,
    stream_tickets,
)
from backend.infrastructure.db.tables.orders import (
    idempotency_keys,
    order_lines,
    order_status_history,
    orders,
)
from backend.infrastructure.db.tables.users import refresh_tokens, users
from backend.infrastructure.db.tables.webhooks import (
    webhook_attempts,
    webhook_deliveries,
    webhook_endpoints,
)

__all__ = [
    "email_sends",
    "idempotency_keys",
    "metadata",
    "notifications",
    "order_lines",
    "order_status_history",
    "orders",
    "outbox_events",
    "processed_events",
    "products",
    "refresh_tokens",
    "stock_adjustments",
    "stream_tickets",
    "users",
    "webhook_attempts",
    "webhook_deliveries",
    "webhook_endpoints",
]
