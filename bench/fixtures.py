"""The run's throwaway database and Redis keys, and the data the scenarios read and write."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import httpx
from sqlalchemy.engine import make_url

from backend import cli

PASSWORD = "correct-horse-9"  # noqa: S105 - throwaway benchmark accounts
PRODUCTS = 100
STOCK = 1_000_000_000


def plain_dsn(url: str, database: str | None = None) -> str:
    """A SQLAlchemy URL as a DSN asyncpg takes (optionally another database on the server)."""
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


async def _admin(server_url: str, statement: str) -> None:
    conn = await asyncpg.connect(plain_dsn(server_url, "postgres"))
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@contextmanager
def throwaway_database(server_url: str) -> Iterator[str]:
    """A new, migrated database on the server (its SQLAlchemy URL), dropped afterwards."""
    name = f"orderflow_bench_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin(server_url, f'CREATE DATABASE "{name}"'))
    try:
        url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
        cli.migrate(database_url=url)
        yield url
    finally:
        asyncio.run(_admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def delete_redis_keys(redis_url: str, prefix: str) -> None:
    from redis import Redis

    client = Redis.from_url(redis_url)
    try:
        for key in client.scan_iter(match=f"{prefix}*", count=1000):
            client.delete(key)
    finally:
        client.close()


async def seed_products(database_url: str) -> list[str]:
    """PRODUCTS active products with stock no bench run can exhaust, in one statement."""
    conn = await asyncpg.connect(plain_dsn(database_url))
    try:
        rows = await conn.fetch(
            """
            INSERT INTO products (id, sku, name, description, price, currency, stock,
                                  is_active, version, created_at, updated_at)
            SELECT gen_random_uuid(), 'BENCH-' || n, 'Bench product ' || n, 'For make bench',
                   450, 'EUR', $2, true, 1, now(), now()
            FROM generate_series(1, $1) AS n
            RETURNING id
            """,
            PRODUCTS,
            STOCK,
        )
    finally:
        await conn.close()
    return [str(row["id"]) for row in rows]


def write_ids(path: Path, ids: list[str]) -> Path:
    path.write_text("\n".join(ids) + "\n")
    return path


class Customer:
    """A registered, logged-in user of the API under test, and the orders it placed."""

    def __init__(self, base_url: str) -> None:
        self.client = httpx.Client(base_url=base_url, timeout=30)
        self.email = f"bench-{uuid.uuid4().hex[:10]}@example.com"
        registered = self.client.post(
            "/api/v1/auth/register", json={"email": self.email, "password": PASSWORD}
        )
        registered.raise_for_status()
        self.token = self.login()

    def login(self) -> str:
        login = self.client.post(
            "/api/v1/auth/login", json={"email": self.email, "password": PASSWORD}
        )
        login.raise_for_status()
        return str(login.json()["access_token"])

    def place_orders(self, product_ids: list[str], n: int) -> list[str]:
        headers = {"Authorization": f"Bearer {self.token}"}
        ids = []
        for i in range(n):
            body = {"items": [{"product_id": product_ids[i % len(product_ids)], "quantity": 1}]}
            placed = self.client.post("/api/v1/orders", json=body, headers=headers)
            placed.raise_for_status()
            ids.append(str(placed.json()["id"]))
        return ids

    def product_json(self, product_id: str) -> str:
        served = self.client.get(f"/api/v1/products/{product_id}")
        served.raise_for_status()
        return json.dumps(served.json())

    def close(self) -> None:
        self.client.close()
