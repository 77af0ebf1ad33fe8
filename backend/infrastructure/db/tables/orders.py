"""Orders, their lines (price snapshots), status history and idempotency keys."""

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from backend.infrastructure.db.tables.base import metadata
from backend.infrastructure.db.types import JSONDocument, Money, StrUUID, UTCDateTime

STATUSES = "'pending', 'validated', 'approved', 'processing', 'completed', 'rejected', 'cancelled'"
# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
HistoryId = BigInteger().with_variant(Integer(), "sqlite")

orders = Table(
    "orders",
    metadata,
    Column("id", StrUUID, primary_key=True),
    Column("user_id", StrUUID, ForeignKey("users.id", ondelete="RESTRICT"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("total", Money, nullable=False),  # integer cents
    Column("currency", String(3), nullable=False),
    Column("shipping_address", String(500), nullable=True),
    Column("note", String(1000), nullable=True),
    Column("status_reason", String(500), nullable=True),
    Column("version", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    CheckConstraint(f"status IN ({STATUSES})", name="status"),
    CheckConstraint("total >= 0", name="total_non_negative"),
    # A customer's listing (newest first, or by total); the admin listing; the workers'
    # progression jobs (status + age).
    Index("ix_orders_user_id_created_at", "user_id", "created_at"),
    Index("ix_orders_user_id_total", "user_id", "total"),
    Index("ix_orders_created_at", "created_at"),
    Index("ix_orders_status_created_at", "status", "created_at"),
    Index("ix_orders_status_updated_at", "status", "updated_at"),
)

order_lines = Table(
    "order_lines",
    metadata,
    Column("order_id", StrUUID, ForeignKey("orders.id", ondelete="CASCADE"), nullable=False),
    Column("line_no", Integer, nullable=False),
    Column("product_id", StrUUID, ForeignKey("products.id", ondelete="RESTRICT"), nullable=False),
    # The snapshot: what the product was called and cost when it was sold.
    Column("sku", String(64), nullable=False),
    Column("product_name", String(200), nullable=False),
    Column("unit_price", Money, nullable=False),
    Column("quantity", Integer, nullable=False),
    PrimaryKeyConstraint("order_id", "line_no"),
    CheckConstraint("quantity BETWEEN 1 AND 1000", name="quantity_range"),
    CheckConstraint("unit_price >= 0", name="unit_price_non_negative"),
    Index("ix_order_lines_product_id", "product_id"),
)

order_status_history = Table(
    "order_status_history",
    metadata,
    Column("id", HistoryId, primary_key=True, autoincrement=True),
    Column("order_id", StrUUID, ForeignKey("orders.id", ondelete="CASCADE"), nullable=False),
    Column("from_status", String(16), nullable=True),  # NULL for the placement entry
    Column("to_status", String(16), nullable=False),
    Column("actor", String(16), nullable=False),
    Column("actor_id", StrUUID, nullable=True),  # no FK: history outlives a deleted user
    Column("reason", String(500), nullable=True),
    Column("at", UTCDateTime, nullable=False),
    CheckConstraint("actor IN ('owner', 'admin', 'system')", name="actor"),
    Index("ix_order_status_history_order_id_id", "order_id", "id"),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("user_id", StrUUID, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("key", String(255), nullable=False),
    Column("request_hash", String(64), nullable=False),  # SHA-256 of the request's meaning
    Column("status_code", Integer, nullable=True),  # NULL only inside the first transaction
    Column("response_body", JSONDocument, nullable=True),
    Column("location", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("user_id", "key"),
    Index("ix_idempotency_keys_created_at", "created_at"),  # the 24 h purge
)
