"""outbox retention: handled events are found by age.

The purge job deletes events every consumer handled more than OUTBOX_RETENTION_DAYS ago
(with their dedup records) in bounded batches; `ix_outbox_events_handled` serves it.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HANDLED = "handled_at IS NOT NULL"


def upgrade() -> None:
    op.create_index(
        "ix_outbox_events_handled",
        "outbox_events",
        ["handled_at"],
        postgresql_where=sa.text(HANDLED),
        sqlite_where=sa.text(HANDLED),
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_events_handled", table_name="outbox_events")
