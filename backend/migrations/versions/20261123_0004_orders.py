"""orders: orders, order lines (price snapshots), status history, idempotency keys.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from backend.infrastructure.db import types as t

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = "'pending', 'validated', 'approved', 'processing', 'completed', 'rejected', 'cancelled'"


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("id", t.StrUUID(), nullable=False),
        sa.Column("user_id", t.StrUUID(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("total", t.Money(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("shipping_address", sa.String(500), nullable=True),
        sa.Column("note", sa.String(1000), nullable=True),
        sa.Column("status_reason", sa.String(500), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", t.UTCDateTime(), nullable=False),
        sa.Column("updated_at", t.UTCDateTime(), nullable=False),
        sa.CheckConstraint(f"status IN ({STATUSES})", name=op.f("ck_orders_status")),
        sa.CheckConstraint("total >= 0", name=op.f("ck_orders_total_non_negative")),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_orders_user_id_users"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
    )
    op.create_index("ix_orders_user_id_created_at", "orders", ["user_id", "created_at"])
    op.create_index("ix_orders_user_id_total", "orders", ["user_id", "total"])
    op.create_index("ix_orders_created_at", "orders", ["created_at"])
    op.create_index("ix_orders_status_created_at", "orders", ["status", "created_at"])
    op.create_index("ix_orders_status_updated_at", "orders", ["status", "updated_at"])

    op.create_table(
        "order_lines",
        sa.Column("order_id", t.StrUUID(), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("product_id", t.StrUUID(), nullable=False),
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("product_name", sa.String(200), nullable=False),
        sa.Column("unit_price", t.Money(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "quantity BETWEEN 1 AND 1000", name=op.f("ck_order_lines_quantity_range")
        ),
        sa.CheckConstraint(
            "unit_price >= 0", name=op.f("ck_order_lines_unit_price_non_negative")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_order_lines_order_id_orders"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.id"],
            name=op.f("fk_order_lines_product_id_products"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("order_id", "line_no", name=op.f("pk_order_lines")),
    )
    op.create_index("ix_order_lines_product_id", "order_lines", ["product_id"])

    op.create_table(
        "order_status_history",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("order_id", t.StrUUID(), nullable=False),
        sa.Column("from_status", sa.String(16), nullable=True),
        sa.Column("to_status", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(16), nullable=False),
        sa.Column("actor_id", t.StrUUID(), nullable=True),
        sa.Column("reason", sa.String(500), nullable=True),
        sa.Column("at", t.UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "actor IN ('owner', 'admin', 'system')", name=op.f("ck_order_status_history_actor")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_order_status_history_order_id_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_status_history")),
    )
    op.create_index(
        "ix_order_status_history_order_id_id", "order_status_history", ["order_id", "id"]
    )

    op.create_table(
        "idempotency_keys",
        sa.Column("user_id", t.StrUUID(), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response_body", t.JSONDocument, nullable=True),
        sa.Column("location", sa.Text(), nullable=True),
        sa.Column("created_at", t.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_idempotency_keys_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "key", name=op.f("pk_idempotency_keys")),
    )
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_idempotency_keys_created_at", table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
    op.drop_index("ix_order_status_history_order_id_id", table_name="order_status_history")
    op.drop_table("order_status_history")
    op.drop_index("ix_order_lines_product_id", table_name="order_lines")
    op.drop_table("order_lines")
    op.drop_index("ix_orders_status_updated_at", table_name="orders")
    op.drop_index("ix_orders_status_created_at", table_name="orders")
    op.drop_index("ix_orders_created_at", table_name="orders")
    op.drop_index("ix_orders_user_id_total", table_name="orders")
    op.drop_index("ix_orders_user_id_created_at", table_name="orders")
    op.drop_table("orders")
