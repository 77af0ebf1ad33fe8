"""workers: the outbox remembers when its consumers handled an event, and who caused it;
expired refresh tokens are found by index.

`handled_at` lets the relay's safety net re-publish events whose dispatch message was lost
(the embedded SQLite broker does not restore a message a SIGKILLed worker had taken);
`request_id` carries the API request id into the worker's log lines of the consumers;
`ix_refresh_tokens_expires_at` serves the purge job's bounded batches.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from backend.infrastructure.db import types as t

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNHANDLED = "published_at IS NOT NULL AND handled_at IS NULL"


def upgrade() -> None:
    op.add_column("outbox_events", sa.Column("handled_at", t.UTCDateTime(), nullable=True))
    op.add_column("outbox_events", sa.Column("request_id", sa.String(64), nullable=True))
    op.create_index(
        "ix_outbox_events_unhandled",
        "outbox_events",
        ["published_at"],
        postgresql_where=sa.text(UNHANDLED),
        sqlite_where=sa.text(UNHANDLED),
    )
    op.create_index("ix_refresh_tokens_expires_at", "refresh_tokens", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_refresh_tokens_expires_at", table_name="refresh_tokens")
    op.drop_index("ix_outbox_events_unhandled", table_name="outbox_events")
    # Plain ALTER TABLE ... DROP COLUMN (SQLite >= 3.35): a batch copy of the table would
    # have to re-create the partial index on unpublished rows.
    op.drop_column("outbox_events", "request_id")
    op.drop_column("outbox_events", "handled_at")
