"""Webhook endpoints, their deliveries (one per event and endpoint) and each attempt."""

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    text,
)

from backend.infrastructure.db.tables.base import metadata
from backend.infrastructure.db.types import JSONDocument, StrUUID, UTCDateTime

webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", StrUUID, primary_key=True),
    Column("url", String(2048), nullable=False),
    Column("event_types", JSONDocument, nullable=False),  # a list of event type names
    Column("description", String(500), nullable=True),
    # Fernet tokens of the `whsec_...` secrets: never stored in the clear (ADR 0016).
    Column("secret_encrypted", Text, nullable=False),
    Column("previous_secret_encrypted", Text, nullable=True),
    Column("previous_secret_expires_at", UTCDateTime, nullable=True),
    Column("enabled", Boolean, nullable=False, server_default=text("true")),
    Column("disabled_at", UTCDateTime, nullable=True),
    Column("disabled_reason", String(500), nullable=True),
    Column("failing_since", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_webhook_endpoints_created_at", "created_at"),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", StrUUID, primary_key=True),
    Column(
        "endpoint_id",
        StrUUID,
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("event_id", StrUUID, nullable=False),  # no FK: the outbox row is purged first
    Column("event_type", String(64), nullable=False),
    Column("body", Text, nullable=False),  # the exact bytes every attempt signs and sends
    Column("status", String(16), nullable=False),
    Column("attempt", Integer, nullable=False, server_default=text("0")),
    Column("attempts_left", Integer, nullable=False),
    Column("response_status", Integer, nullable=True),
    Column("error", String(500), nullable=True),
    Column("response_excerpt", Text, nullable=True),
    Column("latency_ms", Float, nullable=True),
    Column("next_attempt_at", UTCDateTime, nullable=True),
    Column("last_attempt_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    CheckConstraint("status IN ('pending', 'succeeded', 'failed')", name="status"),
    # One delivery per (event, endpoint): an event relayed twice is delivered once.
    Index("ix_webhook_deliveries_event_id_endpoint_id", "event_id", "endpoint_id", unique=True),
    Index("ix_webhook_deliveries_endpoint_id_created_at", "endpoint_id", "created_at"),
    Index(
        "ix_webhook_deliveries_due",
        "next_attempt_at",
        postgresql_where=text("status = 'pending'"),
        sqlite_where=text("status = 'pending'"),
    ),
)

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column(
        "delivery_id",
        StrUUID,
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("number", Integer, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("response_status", Integer, nullable=True),
    Column("latency_ms", Float, nullable=False),
    Column("error", String(500), nullable=True),
    Column("response_excerpt", Text, nullable=True),
    PrimaryKeyConstraint("delivery_id", "number"),
)
