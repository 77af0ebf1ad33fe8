"""Products and the record of manual stock adjustments."""

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    text,
)

from backend.infrastructure.db.tables.base import metadata
from backend.infrastructure.db.types import Money, StrUUID, UTCDateTime

products = Table(
    "products",
    metadata,
    Column("id", StrUUID, primary_key=True),
    # Upper-cased by the domain, so a plain unique index makes SKUs case-insensitively unique.
    Column("sku", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("description", Text, nullable=True),
    Column("price", Money, nullable=False),  # integer cents
    Column("currency", String(3), nullable=False),
    Column("stock", Integer, nullable=False),
    Column("is_active", Boolean, nullable=False, server_default=text("true")),
    Column("version", Integer, nullable=False, server_default=text("1")),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # The backstop behind the conditional UPDATE: no code path can store negative stock.
    CheckConstraint("stock >= 0", name="stock_non_negative"),
    CheckConstraint("price >= 0", name="price_non_negative"),
    Index("ix_products_sku", "sku", unique=True),
    # Listing filters on is_active first, then sorts (or ranges, for price) by these.
    Index("ix_products_is_active_name", "is_active", "name"),
    Index("ix_products_is_active_price", "is_active", "price"),
    Index("ix_products_is_active_created_at", "is_active", "created_at"),
)

stock_adjustments = Table(
    "stock_adjustments",
    metadata,
    Column("id", StrUUID, primary_key=True),
    Column("product_id", StrUUID, ForeignKey("products.id", ondelete="CASCADE"), nullable=False),
    Column("delta", Integer, nullable=False),
    Column("reason", String(200), nullable=False),
    Column("stock_after", Integer, nullable=False),
    Column("actor_id", StrUUID, ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_stock_adjustments_product_id_created_at", "product_id", "created_at"),
)
