"""Users and their refresh-token families."""

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    String,
    Table,
)

from backend.infrastructure.db.tables.base import metadata
from backend.infrastructure.db.types import StrUUID, UTCDateTime

users = Table(
    "users",
    metadata,
    Column("id", StrUUID, primary_key=True),
    # Always stored lower-case (normalised by the domain), so a plain unique index suffices.
    Column("email", String(320), nullable=False),
    Column("full_name", String(200), nullable=True),
    Column("role", String(16), nullable=False),
    Column("is_active", Boolean, nullable=False),
    Column("password_hash", String(128), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    CheckConstraint("role IN ('customer', 'admin')", name="role"),
    Index("ix_users_email", "email", unique=True),
    Index("ix_users_created_at", "created_at"),
)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("id", StrUUID, primary_key=True),
    Column("user_id", StrUUID, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("family_id", StrUUID, nullable=False),
    Column("token_hash", String(64), nullable=False),  # SHA-256, hex
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("spent_at", UTCDateTime, nullable=True),
    Column("revoked_at", UTCDateTime, nullable=True),
    Column("replaced_by", StrUUID, nullable=True),
    Index("ix_refresh_tokens_token_hash", "token_hash", unique=True),
    Index("ix_refresh_tokens_family_id", "family_id"),
    Index("ix_refresh_tokens_user_id", "user_id"),
    Index("ix_refresh_tokens_expires_at", "expires_at"),  # the workers' purge (migration 0005)
)
