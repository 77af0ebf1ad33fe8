"""catalog: products and stock adjustments.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from backend.infrastructure.db import types as t

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "products",
        sa.Column("id", t.StrUUID(), nullable=False),
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("price", t.Money(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("stock", sa.Integer(), nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("created_at", t.UTCDateTime(), nullable=False),
        sa.Column("updated_at", t.UTCDateTime(), nullable=False),
        sa.CheckConstraint("stock >= 0", name=op.f("ck_products_stock_non_negative")),
        sa.CheckConstraint("price >= 0", name=op.f("ck_products_price_non_negative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_products")),
    )
    op.create_index("ix_products_sku", "products", ["sku"], unique=True)
    op.create_index("ix_products_is_active_name", "products", ["is_active", "name"])
    op.create_index("ix_products_is_active_price", "products", ["is_active", "price"])
    op.create_index("ix_products_is_active_created_at", "products", ["is_active", "created_at"])
    op.create_table(
        "stock_adjustments",
        sa.Column("id", t.StrUUID(), nullable=False),
        sa.Column("product_id", t.StrUUID(), nullable=False),
        sa.Column("delta", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("stock_after", sa.Integer(), nullable=False),
        sa.Column("actor_id", t.StrUUID(), nullable=True),
        sa.Column("created_at", t.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.id"],
            name=op.f("fk_stock_adjustments_product_id_products"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["actor_id"],
            ["users.id"],
            name=op.f("fk_stock_adjustments_actor_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stock_adjustments")),
    )
    op.create_index(
        "ix_stock_adjustments_product_id_created_at",
        "stock_adjustments",
        ["product_id", "created_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_stock_adjustments_product_id_created_at", table_name="stock_adjustments")
    op.drop_table("stock_adjustments")
    op.drop_index("ix_products_is_active_created_at", table_name="products")
    op.drop_index("ix_products_is_active_price", table_name="products")
    op.drop_index("ix_products_is_active_name", table_name="products")
    op.drop_index("ix_products_sku", table_name="products")
    op.drop_table("products")
