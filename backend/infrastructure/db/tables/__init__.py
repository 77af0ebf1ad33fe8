"""All tables on one MetaData. Each area keeps its tables in its own module."""

from backend.infrastructure.db.tables.base import metadata
from backend.infrastructure.db.tables.events import outbox_events, processed_events
from backend.infrastructure.db.tables.users import refresh_tokens, users

__all__ = ["metadata", "outbox_events", "processed_events", "refresh_tokens", "users"]
