"""Seeding users and products for order tests, through the real repositories."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import update

from backend.domain.catalog import Product
from backend.domain.orders import LineRequest, PlaceOrderCommand
from backend.domain.users import Role, User


async def seed_user(uow: Any, *, admin: bool = False) -> User:
    now = datetime.now(UTC)
    user = User(
        id=str(uuid.uuid4()),
        email=f"u-{uuid.uuid4().hex[:12]}@example.com",
        full_name=None,
        role=Role.ADMIN if admin else Role.CUSTOMER,
        is_active=True,
        password_hash="not-a-real-hash",
        created_at=now,
        updated_at=now,
    )
    await uow.users.add(user)
    return user


async def seed_product(uow: Any, *, stock: int, price: str = "10.00") -> Product:
    product = Product.new(
        id=str(uuid.uuid4()),
        sku=f"SKU-{uuid.uuid4().hex[:10]}",
        name=f"Product {uuid.uuid4().hex[:6]}",
        description=None,
        price=Decimal(price),
        stock=stock,
        currency="EUR",
        now=datetime.now(UTC),
    )
    await uow.products.add(product)
    return product


async def set_price(uow: Any, product_id: str, price: str) -> None:
    """Change a product's price behind the catalogue's back (a snapshot must not care)."""
    from backend.infrastructure.db.tables import products

    await uow.connection.execute(
        update(products).where(products.c.id == product_id).values(price=Decimal(price))
    )


def order_of(user_id: str, *items: tuple[str, int], **extra: Any) -> PlaceOrderCommand:
    return PlaceOrderCommand(
        user_id=user_id, items=tuple(LineRequest(p, q) for p, q in items), **extra
    )


# --------------------------------------------------------------------------- API tests
def container_of(client: Any) -> Any:
    return client.app.state.container


async def api_product(client: Any, *, stock: int, price: str = "10.00") -> Product:
    """A product written through the app's own unit of work (no admin API needed)."""
    async with container_of(client).uow() as uow:
        product = await seed_product(uow, stock=stock, price=price)
        await uow.commit()
    return product


async def api_stock(client: Any, product_id: str) -> int:
    async with container_of(client).uow() as uow:
        product = await uow.products.get(product_id)
    assert product is not None
    return int(product.stock)


async def api_set_price(client: Any, product_id: str, price: str) -> None:
    async with container_of(client).uow() as uow:
        await set_price(uow, product_id, price)
        await uow.commit()


async def api_user(client: Any, role: str = "customer") -> tuple[dict[str, Any], dict[str, str]]:
    """A registered user (JSON) and their bearer headers."""
    from tests.helpers.auth import bearer, create_user

    user = await create_user(client, role=role)
    return user, bearer(client, user["id"])


def body_of(*items: tuple[str, int], **extra: Any) -> dict[str, Any]:
    return {"items": [{"product_id": p, "quantity": q} for p, q in items], **extra}
