"""SQL repositories of orders (compare-and-set transitions) and idempotency keys."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    bindparam,
    delete,
    func,
    insert,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError

from backend.domain.orders import (
    IdempotencyInFlight,
    IdempotencyRecord,
    Order,
    OrderLine,
    OrderPage,
    OrderQuery,
    OrderStatus,
    OrderStatusChange,
    StoredResponse,
)
from backend.infrastructure.db.repositories.base import SqlRepository
from backend.infrastructure.db.tables.orders import (
    idempotency_keys,
    order_lines,
    order_status_history,
    orders,
)

# Built once (its compiled form and cache key are kept with it): the hottest read.
_ONE_ORDER = (
    select(
        orders,
        order_lines.c.line_no,
        order_lines.c.product_id,
        order_lines.c.sku,
        order_lines.c.product_name,
        order_lines.c.unit_price,
        order_lines.c.quantity,
    )
    .outerjoin(order_lines, order_lines.c.order_id == orders.c.id)
    .where(orders.c.id == bindparam("order_id"))
    .order_by(order_lines.c.line_no)
)
_SORT_COLUMNS = {"created_at": orders.c.created_at, "total": orders.c.total}
LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL: lock_timeout expired


def _line(row: Any) -> OrderLine:
    return OrderLine(
        product_id=row.product_id,
        sku=row.sku,
        product_name=row.product_name,
        unit_price=row.unit_price,
        quantity=row.quantity,
    )


def _order(row: Any, lines: Sequence[OrderLine]) -> Order:
    return Order(
        id=row.id,
        user_id=row.user_id,
        status=OrderStatus(row.status),
        lines=tuple(lines),
        total=row.total,
        currency=row.currency,
        shipping_address=row.shipping_address,
        note=row.note,
        status_reason=row.status_reason,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _history_row(change: OrderStatusChange) -> dict[str, Any]:
    return {
        "order_id": change.order_id,
        "from_status": change.from_status.value if change.from_status else None,
        "to_status": change.to_status.value,
        "actor": change.actor,
        "actor_id": change.actor_id,
        "reason": change.reason,
        "at": change.at,
    }


def _filters(query: OrderQuery) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if query.user_id is not None:
        conditions.append(orders.c.user_id == query.user_id)
    if query.status is not None:
        conditions.append(orders.c.status == query.status.value)
    if query.created_from is not None:
        conditions.append(orders.c.created_at >= query.created_from)
    if query.created_to is not None:
        conditions.append(orders.c.created_at <= query.created_to)
    return conditions


class SqlOrderRepository(SqlRepository):
    async def add(self, order: Order) -> None:
        await self._conn.execute(
            insert(orders).values(
                id=order.id,
                user_id=order.user_id,
                status=order.status.value,
                total=order.total,
                currency=order.currency,
                shipping_address=order.shipping_address,
                note=order.note,
                status_reason=order.status_reason,
                version=order.version,
                created_at=order.created_at,
                updated_at=order.updated_at,
            )
        )
        await self._conn.execute(
            insert(order_lines),
            [
                {
                    "order_id": order.id,
                    "line_no": number,
                    "product_id": line.product_id,
                    "sku": line.sku,
                    "product_name": line.product_name,
                    "unit_price": line.unit_price,
                    "quantity": line.quantity,
                }
                for number, line in enumerate(order.lines, start=1)
            ],
        )

    async def get(self, order_id: str) -> Order | None:
        # One round trip, the order joined with its lines: this is the whole database work
        # of the owner's GET /orders/{id} (docs/adr/0019).
        rows = (await self._conn.execute(_ONE_ORDER, {"order_id": order_id})).all()
        if not rows:
            return None
        return _order(rows[0], [_line(row) for row in rows if row.line_no is not None])

    async def get_many(self, order_ids: Sequence[str]) -> dict[str, Order]:
        if not order_ids:
            return {}
        found = await self._load(select(orders).where(orders.c.id.in_(list(order_ids))))
        return {order.id: order for order in found}

    async def search(self, query: OrderQuery) -> OrderPage:
        conditions = _filters(query)
        total = (
            await self._conn.execute(select(func.count()).select_from(orders).where(*conditions))
        ).scalar_one()
        column = _SORT_COLUMNS[query.sort]
        # The id breaks ties, so pages never overlap or skip rows with equal sort keys.
        order_by: list[Any] = [column, orders.c.id]
        if query.descending:
            order_by = [column.desc(), orders.c.id.desc()]
        statement = (
            select(orders)
            .where(*conditions)
            .order_by(*order_by)
            .limit(query.limit)
            .offset(query.offset)
        )
        return OrderPage(items=await self._load(statement), total=int(total))

    async def _load(self, statement: Select[Any]) -> list[Order]:
        rows = (await self._conn.execute(statement)).all()
        if not rows:
            return []
        lines: dict[str, list[OrderLine]] = {row.id: [] for row in rows}
        line_rows = await self._conn.execute(
            select(order_lines)
            .where(order_lines.c.order_id.in_(list(lines)))
            .order_by(order_lines.c.order_id, order_lines.c.line_no)
        )
        for line in line_rows:
            lines[line.order_id].append(_line(line))
        return [_order(row, lines[row.id]) for row in rows]

    async def compare_and_set_status(
        self,
        order_id: str,
        *,
        expected: OrderStatus,
        target: OrderStatus,
        reason: str | None,
        at: datetime,
    ) -> bool:
        # On PostgreSQL a concurrent writer makes this wait for its commit, then the WHERE is
        # re-checked against the new row: the loser updates 0 rows, never moves it twice.
        result = await self._conn.execute(
            update(orders)
            .where(orders.c.id == order_id, orders.c.status == expected.value)
            .values(
                status=target.value,
                status_reason=reason,
                version=orders.c.version + 1,
                updated_at=at,
            )
        )
        return result.rowcount == 1

    async def compare_and_set_statuses(
        self,
        order_ids: Sequence[str],
        *,
        expected: OrderStatus,
        target: OrderStatus,
        reason: str | None,
        at: datetime,
    ) -> set[str]:
        """`compare_and_set_status` for many orders in one statement: the ids it moved."""
        if not order_ids:
            return set()
        result = await self._conn.execute(
            update(orders)
            .where(orders.c.id.in_(list(order_ids)), orders.c.status == expected.value)
            .values(
                status=target.value,
                status_reason=reason,
                version=orders.c.version + 1,
                updated_at=at,
            )
            .returning(orders.c.id)
        )
        return set(result.scalars())

    async def update_details(
        self,
        order_id: str,
        *,
        changes: dict[str, str | None],
        editable: Sequence[OrderStatus],
        expected_version: int | None,
        at: datetime,
    ) -> bool:
        conditions = [orders.c.id == order_id, orders.c.status.in_([s.value for s in editable])]
        if expected_version is not None:
            conditions.append(orders.c.version == expected_version)
        result = await self._conn.execute(
            update(orders)
            .where(*conditions)
            .values(**changes, version=orders.c.version + 1, updated_at=at)
        )
        return result.rowcount == 1

    async def add_history(self, change: OrderStatusChange) -> None:
        await self.add_history_many([change])

    async def add_history_many(self, changes: Sequence[OrderStatusChange]) -> None:
        if changes:  # one executemany: the driver sends the rows together
            await self._conn.execute(
                insert(order_status_history), [_history_row(c) for c in changes]
            )

    async def history(self, order_id: str) -> list[OrderStatusChange]:
        rows = await self._conn.execute(
            select(order_status_history)
            .where(order_status_history.c.order_id == order_id)
            .order_by(order_status_history.c.id)
        )
        return [
            OrderStatusChange(
                order_id=row.order_id,
                from_status=OrderStatus(row.from_status) if row.from_status else None,
                to_status=OrderStatus(row.to_status),
                actor=row.actor,
                actor_id=row.actor_id,
                reason=row.reason,
                at=row.at,
            )
            for row in rows
        ]

    async def claim_ids(
        self,
        status: OrderStatus,
        *,
        limit: int,
        created_before: datetime | None = None,
        updated_before: datetime | None = None,
        max_total: Decimal | None = None,
    ) -> list[str]:
        conditions = [orders.c.status == status.value]
        if created_before is not None:
            conditions.append(orders.c.created_at < created_before)
        if updated_before is not None:
            conditions.append(orders.c.updated_at < updated_before)
        if max_total is not None:
            conditions.append(orders.c.total <= max_total)
        statement = (
            select(orders.c.id)
            .where(and_(*conditions))
            .order_by(orders.c.created_at, orders.c.id)
            .limit(limit)
        )
        if self.dialect == "postgresql":  # SQLite has one writer: BEGIN IMMEDIATE is the lock
            statement = statement.with_for_update(skip_locked=True)
        return list((await self._conn.execute(statement)).scalars())


class SqlIdempotencyRepository(SqlRepository):
    async def claim(
        self,
        user_id: str,
        key: str,
        *,
        request_hash: str,
        now: datetime,
        expired_before: datetime,
        wait_seconds: float,
    ) -> IdempotencyRecord | None:
        # Inserted first in the order's transaction. A concurrent holder of the key makes
        # this wait (PostgreSQL: on its uncommitted row; SQLite: at BEGIN IMMEDIATE, so the
        # holder has already committed) and then see the committed row. A row older than
        # the retention is taken over, as if it had been purged.
        statement = (
            self._upsert(idempotency_keys)
            .values(user_id=user_id, key=key, request_hash=request_hash, created_at=now)
            .on_conflict_do_update(
                index_elements=["user_id", "key"],
                set_={
                    "request_hash": request_hash,
                    "status_code": None,
                    "response_body": None,
                    "location": None,
                    "created_at": now,
                },
                where=idempotency_keys.c.created_at < expired_before,
            )
        )
        if await self._execute_within(statement, wait_seconds) == 1:
            return None
        row = (
            await self._conn.execute(
                select(idempotency_keys).where(
                    idempotency_keys.c.user_id == user_id, idempotency_keys.c.key == key
                )
            )
        ).one()
        response = None
        if row.status_code is not None:
            response = StoredResponse(row.status_code, dict(row.response_body), row.location)
        return IdempotencyRecord(user_id, key, row.request_hash, response, row.created_at)

    def _upsert(self, table: Any) -> Any:
        return (postgresql.insert if self.dialect == "postgresql" else sqlite.insert)(table)

    async def _execute_within(self, statement: Any, wait_seconds: float) -> int:
        """Run `statement`, waiting at most `wait_seconds` for row locks (PostgreSQL)."""
        if self.dialect != "postgresql":
            return int((await self._conn.execute(statement)).rowcount)
        await self._conn.execute(text(f"SET LOCAL lock_timeout = '{int(wait_seconds * 1000)}ms'"))
        try:
            result = await self._conn.execute(statement)
        except DBAPIError as error:
            if getattr(error.orig, "sqlstate", None) == LOCK_NOT_AVAILABLE:
                raise IdempotencyInFlight() from error
            raise
        await self._conn.execute(text("SET LOCAL lock_timeout = DEFAULT"))
        return int(result.rowcount)

    async def complete(self, user_id: str, key: str, response: StoredResponse) -> None:
        await self._conn.execute(
            update(idempotency_keys)
            .where(idempotency_keys.c.user_id == user_id, idempotency_keys.c.key == key)
            .values(
                status_code=response.status_code,
                response_body=response.body,
                location=response.location,
            )
        )

    async def purge(self, expired_before: datetime, limit: int) -> int:
        doomed = (
            select(idempotency_keys.c.user_id, idempotency_keys.c.key)
            .where(idempotency_keys.c.created_at < expired_before)
            .limit(limit)
        )
        keys = [tuple(row) for row in (await self._conn.execute(doomed)).all()]
        if not keys:
            return 0
        result = await self._conn.execute(
            delete(idempotency_keys).where(
                tuple_(idempotency_keys.c.user_id, idempotency_keys.c.key).in_(keys)
            )
        )
        return int(result.rowcount)
