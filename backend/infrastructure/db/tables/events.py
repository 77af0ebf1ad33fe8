"""The transactional outbox and the consumers' dedup record."""

from sqlalchemy import Column, Index, Integer, PrimaryKeyConstraint, String, Table, text

from backend.infrastructure.db.tables.base import metadata
from backend.infrastructure.db.types import JSONDocument, StrUUID, UTCDateTime

outbox_events = Table(
    "outbox_events",
    metadata,
    Column("id", StrUUID, primary_key=True),
    Column("type", String(64), nullable=False),
    Column("aggregate_type", String(32), nullable=False),
    Column("aggregate_id", String(64), nullable=False),
    Column("payload", JSONDocument, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("published_at", UTCDateTime, nullable=True),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    # Workers (migration 0005): when every consumer handled the event (the relay's safety
    # net re-publishes published-but-unhandled rows), and the request that caused it.
    Column("handled_at", UTCDateTime, nullable=True),
    Column("request_id", String(64), nullable=True),
    Index(
        "ix_outbox_events_unpublished",
        "created_at",
        postgresql_where=text("published_at IS NULL"),
        sqlite_where=text("published_at IS NULL"),
    ),
    # Retention (migration 0006): the purge job deletes handled events by age.
    Index(
        "ix_outbox_events_handled",
        "handled_at",
        postgresql_where=text("handled_at IS NOT NULL"),
        sqlite_where=text("handled_at IS NOT NULL"),
    ),
    Index(
        "ix_outbox_events_unhandled",
        "published_at",
        postgresql_where=text("published_at IS NOT NULL AND handled_at IS NULL"),
        sqlite_where=text("published_at IS NOT NULL AND handled_at IS NULL"),
    ),
)

processed_events = Table(
    "processed_events",
    metadata,
    Column("event_id", StrUUID, nullable=False),
    Column("consumer", String(64), nullable=False),
    Column("processed_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("event_id", "consumer"),
)
