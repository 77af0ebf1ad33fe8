"""SQL repositories of orders (compare-and-set transitions) and idempotency keys."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Select,
    and_,
    bindparam,
    delete,
    func,
    insert,
    literal,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from backend.domain.events import ORDER_STATUS_CHANGED, DomainEvent
from backend.domain.orders import (
    ClaimFilter,
    IdempotencyInFlight,
    IdempotencyRecord,
    Order,
    OrderLine,
    OrderPage,
    OrderQuery,
    OrderStatus,
    OrderStatusChange,
    StoredResponse,
    status_changed_payload,
)
from backend.domain.workflow import BatchMove
from backend.infrastructure.db.driver import driver
from backend.infrastructure.db.repositories.base import SqlRepository
from backend.infrastructure.db.repositories.events import SqlOutboxRepository, current_request_id
from backend.infrastructure.db.tables.orders import (
    idempotency_keys,
    order_lines,
    order_status_history,
    orders,
)
from backend.infrastructure.db.types import Money, UTCDateTime, from_cents, to_cents

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
# The same read on PostgreSQL, sent as it is (docs/adr/0019: asyncpg alone is about a
# quarter of the CPU of a statement through SQLAlchemy, and this is the whole database work
# of the owner's read). `_raw_order` converts what `_order` and `_line` get through the types.
_ONE_ORDER_SQL = """
SELECT o.id, o.user_id, o.status, o.total, o.currency, o.shipping_address, o.note,
       o.status_reason, o.version, o.created_at, o.updated_at,
       l.line_no, l.product_id, l.sku, l.product_name, l.unit_price, l.quantity
FROM orders o LEFT JOIN order_lines l ON l.order_id = o.id
WHERE o.id = $1
ORDER BY l.line_no
"""
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


def _raw_order(rows: Sequence[Any]) -> Order:
    """An order from asyncpg's records of `_ONE_ORDER_SQL` (no SQLAlchemy types)."""
    row = rows[0]
    lines = tuple(
        OrderLine(
            product_id=str(line["product_id"]),
            sku=line["sku"],
            product_name=line["product_name"],
            unit_price=from_cents(line["unit_price"]),
            quantity=line["quantity"],
        )
        for line in rows
        if line["line_no"] is not None
    )
    return Order(
        id=str(row["id"]),
        user_id=str(row["user_id"]),
        status=OrderStatus(row["status"]),
        lines=lines,
        total=from_cents(row["total"]),
        currency=row["currency"],
        shipping_address=row["shipping_address"],
        note=row["note"],
        status_reason=row["status_reason"],
        version=row["version"],
        created_at=row["created_at"].astimezone(UTC),
        updated_at=row["updated_at"].astimezone(UTC),
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


_HISTORY_COLUMNS = ("order_id", "from_status", "to_status", "actor", "actor_id", "reason", "at")


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


def _claim_conditions(where: ClaimFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if where.created_before is not None:
        conditions.append(orders.c.created_at < where.created_before)
    if where.updated_before is not None:
        conditions.append(orders.c.updated_at < where.updated_before)
    if where.max_total is not None:
        conditions.append(orders.c.total <= where.max_total)
    return conditions


# A batch of a Beat job in one statement (PostgreSQL): the claim locks the rows it takes and
# skips those other transactions hold, so two workers take disjoint batches and a row is
# moved once; the UPDATE re-checks nothing because the claim's lock keeps the status put.
# The starting statuses are written into the SQL (`status = 'approved'`): with a parameter
# or `= ANY(...)` the planner reads the claim from the created_at index and filters out
# every order already moved, which makes each batch of a long run slower than the last.
# `o.id = ANY(ARRAY(...))` keeps the UPDATE on the primary key: joined with the claim
# alone, large batches got a hash join over a sequential scan of all orders.
# The event payload is `status_changed_payload`'s field for field (total: integer cents as
# the Decimal's text; at: the moment as Python's isoformat; items in line order).
MOVE_BATCH = """
WITH claimed AS (
  SELECT id, status AS from_status FROM orders
  WHERE {sources} {filters}
  ORDER BY created_at, id
  LIMIT :limit
  FOR UPDATE SKIP LOCKED
), moved AS (
  UPDATE orders o
  SET status = CAST(:target AS varchar), status_reason = NULL, version = o.version + 1,
      updated_at = CAST(:at AS timestamptz)
  FROM claimed WHERE o.id = claimed.id AND o.id = ANY(ARRAY(SELECT id FROM claimed))
  RETURNING o.id, o.user_id, o.total, o.currency, o.version, claimed.from_status
), history AS (
  INSERT INTO order_status_history (order_id, from_status, to_status, actor, actor_id, reason, at)
  SELECT id, from_status, CAST(:target AS varchar), CAST(:actor AS varchar), NULL, NULL,
         CAST(:at AS timestamptz)
  FROM moved
), events AS (
  INSERT INTO outbox_events
    (id, type, aggregate_type, aggregate_id, payload, created_at, attempts, request_id)
  SELECT gen_random_uuid(), CAST(:event_type AS varchar), 'order', m.id::text,
         jsonb_build_object(
           'order_id', m.id::text,
           'user_id', m.user_id::text,
           'from_status', m.from_status,
           'to_status', CAST(:target AS text),
           'status', CAST(:target AS text),
           'total', round(m.total / 100.0, 2)::text,
           'currency', m.currency,
           'actor', CAST(:actor AS text),
           'actor_id', NULL::text,
           'reason', NULL::text,
           'version', m.version,
           'at', CAST(:at_text AS text),
           'items', (
             SELECT coalesce(
               jsonb_agg(
                 jsonb_build_object(
                   'product_id', l.product_id::text, 'sku', l.sku, 'quantity', l.quantity
                 ) ORDER BY l.line_no
               ),
               '[]'::jsonb
             )
             FROM order_lines l WHERE l.order_id = m.id
           )
         ),
         CAST(:at AS timestamptz), 0, CAST(:request_id AS varchar)
  FROM moved m
)
SELECT from_status, count(*) AS moved FROM moved GROUP BY from_status
"""


# Inside `together()` on PostgreSQL (docs/adr/0019): the parts of one statement, in the
# values the columns store (see `writes.py`).
_INSERT_ORDER = """INSERT INTO orders (id, user_id, status, total, currency, shipping_address,
    note, status_reason, version, created_at, updated_at)
VALUES ($1::uuid, $2::uuid, $3, $4::bigint, $5, $6, $7, $8, $9::integer, $10::timestamptz,
    $11::timestamptz)"""
_INSERT_LINES = """INSERT INTO order_lines (order_id, line_no, product_id, sku, product_name,
    unit_price, quantity)
SELECT $1::uuid, line.no, line.product_id, line.sku, line.name, line.price, line.quantity
FROM unnest($2::uuid[], $3::text[], $4::text[], $5::bigint[], $6::integer[])
    WITH ORDINALITY AS line(product_id, sku, name, price, quantity, no)"""
_INSERT_HISTORY = """INSERT INTO order_status_history (order_id, from_status, to_status, actor,
    actor_id, reason, at)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::uuid[], $6::text[],
    $7::timestamptz[])"""
_COMPLETE_KEY = """UPDATE idempotency_keys
SET status_code = $1::integer, response_body = $2::text::jsonb, location = $3
WHERE user_id = $4::uuid AND key = $5"""
# The claim in one statement: the wait for a concurrent holder of the key is bounded by a
# transaction-local lock_timeout set before the insert and, once the row is ours, put back
# to what it was (the RETURNING runs after the insert), so later statements of the
# transaction wait as they would have.
_CLAIM_KEY = """WITH before AS MATERIALIZED (
    SELECT current_setting('lock_timeout') AS lock_timeout
), waiting AS MATERIALIZED (
    SELECT set_config('lock_timeout', $5, true) AS lock_timeout FROM before
)
INSERT INTO idempotency_keys AS k (user_id, key, request_hash, created_at)
SELECT $1::uuid, $2, $3, $4::timestamptz FROM waiting
ON CONFLICT (user_id, key) DO UPDATE
SET request_hash = EXCLUDED.request_hash, status_code = NULL, response_body = NULL,
    location = NULL, created_at = EXCLUDED.created_at
WHERE k.created_at < $6::timestamptz
RETURNING (SELECT set_config('lock_timeout', before.lock_timeout, true) FROM before)"""


class SqlOrderRepository(SqlRepository):
    async def add(self, order: Order) -> None:
        if (writes := self._deferred()) is not None:
            writes.add(
                _INSERT_ORDER,
                order.id,
                order.user_id,
                order.status.value,
                to_cents(order.total),
                order.currency,
                order.shipping_address,
                order.note,
                order.status_reason,
                order.version,
                order.created_at,
                order.updated_at,
            )
            lines = order.lines
            writes.add(
                _INSERT_LINES,
                order.id,
                [line.product_id for line in lines],
                [line.sku for line in lines],
                [line.product_name for line in lines],
                [to_cents(line.unit_price) for line in lines],
                [line.quantity for line in lines],
            )
            return
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
        if self.dialect == "postgresql":
            async with driver(self._conn) as raw:
                records = await raw.fetch(_ONE_ORDER_SQL, uuid.UUID(order_id))
            return _raw_order(records) if records else None
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

    async def move_batch(
        self, move: BatchMove, *, limit: int, at: datetime, where: ClaimFilter
    ) -> dict[OrderStatus, int]:
        if self.dialect == "postgresql":
            return await self._move_batch_in_one_statement(move, limit, at, where)
        return await self._move_batch_portably(move, limit, at, where)

    async def _move_batch_in_one_statement(
        self, move: BatchMove, limit: int, at: datetime, where: ClaimFilter
    ) -> dict[OrderStatus, int]:
        """PostgreSQL: claim, move, history and events of the batch in one statement
        (`MOVE_BATCH`); the payload is `status_changed_payload`'s, built by the database."""
        filters = [
            sql
            for sql, value in (
                ("AND created_at < :created_before", where.created_before),
                ("AND updated_at < :updated_before", where.updated_before),
                ("AND total <= :max_total", where.max_total),
            )
            if value is not None
        ]
        params: dict[str, Any] = {
            "target": move.target.value,
            "actor": str(move.actor),
            "limit": limit,
            "at": at,
            "at_text": at.isoformat(),
            "event_type": ORDER_STATUS_CHANGED,
            "request_id": current_request_id(),
        }
        binds: list[BindParameter[Any]] = [
            bindparam("at", type_=UTCDateTime),
        ]
        if where.created_before is not None:
            params["created_before"] = where.created_before
            binds.append(bindparam("created_before", type_=UTCDateTime))
        if where.updated_before is not None:
            params["updated_before"] = where.updated_before
            binds.append(bindparam("updated_before", type_=UTCDateTime))
        if where.max_total is not None:
            params["max_total"] = where.max_total
            binds.append(bindparam("max_total", type_=Money))
        # Literals from the enum (never from input): the planner sees which status.
        statuses = ", ".join(f"'{OrderStatus(status).value}'" for status in move.sources)
        sources = f"status IN ({statuses})" if len(move.sources) > 1 else f"status = {statuses}"
        sql = MOVE_BATCH.format(sources=sources, filters=" ".join(filters))
        statement = text(sql).bindparams(*binds)
        rows = (await self._conn.execute(statement, params)).all()
        return {OrderStatus(row.from_status): int(row.moved) for row in rows}

    async def _move_batch_portably(
        self, move: BatchMove, limit: int, at: datetime, where: ClaimFilter
    ) -> dict[OrderStatus, int]:
        """SQLite (one writer: `BEGIN IMMEDIATE` already holds the database, so what is read
        stays put): read the batch with its lines, one UPDATE, one history insert and one
        outbox insert, the events built by `status_changed_payload`."""
        conditions: list[ColumnElement[bool]] = [
            orders.c.status.in_([status.value for status in move.sources]),
            *_claim_conditions(where),
        ]
        claimed = await self._load(
            select(orders)
            .where(*conditions)
            .order_by(orders.c.created_at, orders.c.id)
            .limit(limit)
        )
        if not claimed:
            return {}
        await self._conn.execute(
            update(orders)
            .where(orders.c.id.in_([order.id for order in claimed]))
            .values(
                status=move.target.value,
                status_reason=None,
                version=orders.c.version + 1,
                updated_at=at,
            )
        )
        changes: list[OrderStatusChange] = []
        events: list[DomainEvent] = []
        moved: dict[OrderStatus, int] = {}
        for before in claimed:
            after = before.moved_to(move.target, reason=None, at=at)
            changes.append(
                OrderStatusChange(
                    order_id=after.id,
                    from_status=before.status,
                    to_status=after.status,
                    actor=str(move.actor),
                    actor_id=None,
                    reason=None,
                    at=at,
                )
            )
            events.append(
                DomainEvent(
                    type=ORDER_STATUS_CHANGED,
                    aggregate_type="order",
                    aggregate_id=after.id,
                    payload=status_changed_payload(before, after, str(move.actor), None),
                    occurred_at=at,
                )
            )
            moved[before.status] = moved.get(before.status, 0) + 1
        await self._add_history_many(changes)
        await SqlOutboxRepository(self._conn).add_many(events)
        return moved

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
        await self._add_history_many([change])

    async def _add_history_many(self, changes: Sequence[OrderStatusChange]) -> None:
        if changes and (writes := self._deferred()) is not None:
            rows = [_history_row(c) for c in changes]
            writes.add(
                _INSERT_HISTORY,
                *([row[column] for row in rows] for column in _HISTORY_COLUMNS),
            )
            return
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
        # The status is written into the SQL, as in MOVE_BATCH above: as a parameter of the
        # driver's prepared statement, PostgreSQL switches to a generic plan after five runs
        # and reads the created_at index past every order already moved (0.7 ms -> 28 ms
        # per claim with 2,000 pending among 300,000 orders, and growing with the table).
        conditions = [orders.c.status == literal(status.value, literal_execute=True)]
        conditions += _claim_conditions(ClaimFilter(created_before, updated_before, max_total))
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
        if self.dialect == "postgresql":
            ours = await self._claim_on_postgresql(
                user_id, key, request_hash, now, expired_before, wait_seconds
            )
            return None if ours else await self._record(user_id, key)
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
        if int((await self._conn.execute(statement)).rowcount) == 1:
            return None
        return await self._record(user_id, key)

    async def _claim_on_postgresql(
        self,
        user_id: str,
        key: str,
        request_hash: str,
        now: datetime,
        expired_before: datetime,
        wait_seconds: float,
    ) -> bool:
        """One statement (docs/adr/0019); True when the key is this transaction's now."""
        wait = f"{int(wait_seconds * 1000)}ms"
        try:
            async with driver(self._conn) as raw:
                rows = await raw.fetch(
                    _CLAIM_KEY, user_id, key, request_hash, now, wait, expired_before
                )
        except Exception as error:  # asyncpg's own (see driver.py)
            if getattr(error, "sqlstate", None) == LOCK_NOT_AVAILABLE:
                raise IdempotencyInFlight() from error
            raise
        return bool(rows)

    async def _record(self, user_id: str, key: str) -> IdempotencyRecord:
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

    async def complete(self, user_id: str, key: str, response: StoredResponse) -> None:
        if (writes := self._deferred()) is not None:
            body = json.dumps(response.body)
            writes.add(_COMPLETE_KEY, response.status_code, body, response.location, user_id, key)
            return
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
