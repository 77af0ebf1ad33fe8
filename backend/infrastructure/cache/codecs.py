"""How cached values travel through Redis: JSON inside an envelope with a schema version.

The schema version is in the value, not the key: a process that finds an entry of
another schema (an older or newer deploy) treats it as a miss and overwrites it, and
an invalidation deletes the one key whichever schema wrote it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, Generic, Protocol, TypeVar

from backend.core.logging import get_logger
from backend.domain.catalog import PRODUCT_LIST_NS, PRODUCT_NS, Product, ProductPage

log = get_logger(__name__)
V = TypeVar("V")


class Codec(Protocol):
    def encode(self, value: Any) -> bytes: ...

    def decode(self, raw: bytes) -> Any | None:
        """The value, or None when the entry is of another schema or unreadable."""
        ...


class JsonCodec(Generic[V]):
    def __init__(self, schema: int, dump: Callable[[V], Any], load: Callable[[Any], V]) -> None:
        self.schema = schema
        self._dump = dump
        self._load = load

    def encode(self, value: V) -> bytes:
        envelope = {"schema": self.schema, "value": self._dump(value)}
        return json.dumps(envelope, separators=(",", ":")).encode()

    def decode(self, raw: bytes) -> V | None:
        try:
            envelope = json.loads(raw)
            if envelope.get("schema") != self.schema:
                return None
            return self._load(envelope["value"])
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("cache_entry_unreadable", schema=self.schema)
            return None


def dump_product(product: Product) -> dict[str, Any]:
    return {
        "id": product.id,
        "sku": product.sku,
        "name": product.name,
        "description": product.description,
        "price": str(product.price),
        "currency": product.currency,
        "stock": product.stock,
        "is_active": product.is_active,
        "version": product.version,
        "created_at": product.created_at.isoformat(),
        "updated_at": product.updated_at.isoformat(),
    }


def load_product(data: dict[str, Any]) -> Product:
    return Product(
        id=data["id"],
        sku=data["sku"],
        name=data["name"],
        description=data["description"],
        price=Decimal(data["price"]),
        currency=data["currency"],
        stock=int(data["stock"]),
        is_active=bool(data["is_active"]),
        version=int(data["version"]),
        created_at=datetime.fromisoformat(data["created_at"]),
        updated_at=datetime.fromisoformat(data["updated_at"]),
    )


def dump_page(page: ProductPage) -> dict[str, Any]:
    return {
        "items": [dump_product(p) for p in page.items],
        "total": page.total,
        "limit": page.limit,
        "offset": page.offset,
    }


def load_page(data: dict[str, Any]) -> ProductPage:
    return ProductPage(
        items=[load_product(item) for item in data["items"]],
        total=int(data["total"]),
        limit=int(data["limit"]),
        offset=int(data["offset"]),
    )


# Bump a schema number whenever the shape of its value changes.
PRODUCT_SCHEMA = 1
PRODUCT_PAGE_SCHEMA = 1

CATALOG_CODECS: Mapping[str, Codec] = {
    PRODUCT_NS: JsonCodec(PRODUCT_SCHEMA, dump_product, load_product),
    PRODUCT_LIST_NS: JsonCodec(PRODUCT_PAGE_SCHEMA, dump_page, load_page),
}
