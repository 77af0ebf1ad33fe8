"""In-app notifications, the record of every email send, and one-time stream tickets."""

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from backend.infrastructure.db.tables.base import metadata
from backend.infrastructure.db.types import JSONDocument, StrUUID, UTCDateTime

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
NotificationId = BigInteger().with_variant(Integer(), "sqlite")
EMAIL_STATUSES = "'pending', 'sent', 'failed'"

notifications = Table(
    "notifications",
    metadata,
    # Monotonic per recipient in commit order (the writer locks the recipient first), so it
    # is the SSE event id and `id > Last-Event-ID` replays without a gap (ADR 0015).
    Column("id", NotificationId, primary_key=True, autoincrement=True),
    Column("user_id", StrUUID, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("event_id", StrUUID, nullable=False),
    Column("type", String(64), nullable=False),
    Column("title", String(200), nullable=False),
    Column("body", Text, nullable=False),
    Column("data", JSONDocument, nullable=False),
    Column("read_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    # One event makes one notification per recipient, however often it is relayed.
    UniqueConstraint("event_id", "user_id"),
    # A user's listing (newest first) and the stream's replay (`id > n`).
    Index("ix_notifications_user_id_id", "user_id", "id"),
    Index(
        "ix_notifications_unread",
        "user_id",
        "id",
        postgresql_where=text("read_at IS NULL"),
        sqlite_where=text("read_at IS NULL"),
    ),
)

email_sends = Table(
    "email_sends",
    metadata,
    Column("id", StrUUID, primary_key=True),
    Column("event_id", StrUUID, nullable=False),
    Column("template", String(64), nullable=False),
    Column("recipient", String(320), nullable=False),
    Column("subject", String(300), nullable=False),
    Column("text_body", Text, nullable=False),
    Column("html_body", Text, nullable=False),
    Column("message_id", String(255), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    # When the next attempt is due; a claimed send is leased by moving it forward.
    Column("next_attempt_at", UTCDateTime, nullable=True),
    Column("last_error", String(500), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime, nullable=True),
    CheckConstraint(f"status IN ({EMAIL_STATUSES})", name="status"),
    UniqueConstraint("event_id", "template"),
    Index(
        "ix_email_sends_due",
        "next_attempt_at",
        postgresql_where=text("status = 'pending'"),
        sqlite_where=text("status = 'pending'"),
    ),
)

stream_tickets = Table(
    "stream_tickets",
    metadata,
    Column("token_hash", String(64), primary_key=True),  # SHA-256, hex
    Column("user_id", StrUUID, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Index("ix_stream_tickets_expires_at", "expires_at"),
)
