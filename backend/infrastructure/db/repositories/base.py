"""What every SQL repository shares: the connection of its unit of work."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Row, Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.infrastructure.db.writes import PendingWrites


class SqlRepository:
    def __init__(self, connection: AsyncConnection, writes: PendingWrites | None = None) -> None:
        self._conn = connection
        self._writes = writes

    def _deferred(self) -> PendingWrites | None:
        """Where a plain write goes while its unit of work is inside `together()` on
        PostgreSQL (it then reaches the server with the others); None: run it now."""
        writes = self._writes
        return writes if writes is not None and writes.collecting else None

    @property
    def dialect(self) -> str:
        return self._conn.dialect.name

    def insert_ignoring_conflicts(self, table: Table, index_elements: list[str]) -> Any:
        """`INSERT ... ON CONFLICT DO NOTHING` on either database."""
        dialect_insert = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        return dialect_insert(table).on_conflict_do_nothing(index_elements=index_elements)

    async def insert_new(
        self,
        table: Table,
        unique: list[str],
        rows: Sequence[dict[str, Any]],
        *returning: Column[Any],
    ) -> list[Row[Any]]:
        """Insert `rows` in one multi-row statement, skipping those whose `unique` columns
        already exist; `returning` of the rows inserted."""
        if not rows:
            return []
        statement = (
            self.insert_ignoring_conflicts(table, unique).values(list(rows)).returning(*returning)
        )
        return list((await self._conn.execute(statement)).all())

    async def oldest_ids(
        self, table: Table, stamp: Column[Any], before: datetime, limit: int
    ) -> list[Any]:
        """Up to `limit` ids of `table`'s rows whose `stamp` is before `before`, oldest
        first: one bounded batch of a purge job."""
        doomed = select(table.c.id).where(stamp < before).order_by(stamp).limit(limit)
        return list((await self._conn.execute(doomed)).scalars())
