"""Column types that behave the same on PostgreSQL and SQLite."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Dialect, Uuid
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator

CENT = Decimal("0.01")


def to_cents(value: Decimal) -> int:
    """What a `Money` column stores (also for statements sent past SQLAlchemy's types)."""
    return int((Decimal(value).quantize(CENT) * 100).to_integral_exact())


def from_cents(value: int) -> Decimal:
    return (Decimal(int(value)) / 100).quantize(CENT)


class Money(TypeDecorator[Decimal]):
    """Exact money as integer cents in the database, `Decimal` with 2 places in Python."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> int | None:
        if value is None:
            return None
        return to_cents(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return from_cents(value)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes in and out (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class StrUUID(TypeDecorator[str]):
    """UUID columns (native on PostgreSQL) exposed to the domain as opaque strings."""

    impl = Uuid(as_uuid=True)
    cache_ok = True

    def process_bind_param(self, value: str | uuid.UUID | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else str(value)


JSONDocument = JSON().with_variant(JSONB(), "postgresql")
