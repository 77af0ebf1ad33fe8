"""Writes sent together: on PostgreSQL, the inserts and updates a unit of work makes inside
`together()` reach the server as ONE statement (each a data-modifying `WITH` part), so a
placement's order, lines, history entry, outbox row and idempotency response cost one round
trip instead of five (docs/adr/0019).

Only writes whose caller needs no answer take part (the repositories decide: `add`-style
methods). Each part is plain SQL with its own `$1..$n`; the parts' parameters are numbered
on when they are joined. The statement goes to asyncpg as it is (`driver.py`: no SQLAlchemy
compilation or type processing), so the parts pass values the way the columns store them
(cents for money, JSON text for documents).
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from backend.infrastructure.db.driver import driver

_PARAMETER = re.compile(r"\$(\d+)")


class PendingWrites:
    """The parts collected while a unit of work is inside `together()` (PostgreSQL only)."""

    def __init__(self) -> None:
        self.collecting = False
        self._parts: list[str] = []
        self._args: list[Any] = []

    def add(self, sql: str, *args: Any) -> None:
        base = len(self._args)
        self._parts.append(_PARAMETER.sub(lambda m: f"${int(m.group(1)) + base}", sql))
        self._args.extend(args)

    def statement(self) -> tuple[str, tuple[Any, ...]]:
        parts = ",\n".join(f"w{i} AS ({part})" for i, part in enumerate(self._parts))
        return f"WITH {parts}\nSELECT 1", tuple(self._args)

    def __bool__(self) -> bool:
        return bool(self._parts)

    def clear(self) -> None:
        self._parts.clear()
        self._args.clear()

    async def flush(self, conn: AsyncConnection) -> None:
        """Send what was collected, as one statement (each part runs exactly once, to
        completion; foreign keys between the parts are checked at the statement's end)."""
        if not self:
            return
        sql, args = self.statement()
        self.clear()
        async with driver(conn) as raw:
            await raw.execute(sql, *args)
