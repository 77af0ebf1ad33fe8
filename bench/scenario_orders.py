"""POST /orders throughput with stock reservation on PostgreSQL, against GET /health.

One real uvicorn worker process serves a throwaway, migrated PostgreSQL database; the
load generator (this process) keeps CONCURRENCY requests in flight. Rounds of /health
(baseline) and POST /orders (subject) alternate, so drift hits both alike.

ratio = orders per second / health requests per second, on the same server in the same run.
Each order reserves stock for 1-3 lines (conditional UPDATEs in sorted order), writes the
order, its lines, a history row and an outbox row, and kicks the outbox relay after commit.

Needs BENCH_DATABASE_URL (a PostgreSQL server, e.g. postgresql+asyncpg://postgres@127.0.0.1:5432);
skipped with a message otherwise. BENCH_REDIS_URL, when set, is the broker (full mode);
otherwise the embedded broker takes the relay kicks.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from bench.harness import admin_sql, delete_redis_keys, free_port, migrate, percentile

CONCURRENCY = 8
ROUNDS = 3
SECONDS = 3.0
PRODUCTS = 20
STOCK = 1_000_000
PASSWORD = "correct-horse-9"  # noqa: S105 - a throwaway benchmark account
ROOT = Path(__file__).resolve().parent.parent
NAME = "POST /orders (PostgreSQL, 1 uvicorn worker) vs GET /health"


async def seed_products(database_url: str) -> list[str]:
    from backend.domain.catalog import Product
    from backend.infrastructure.db.engine import create_engine
    from backend.infrastructure.db.uow import SqlUnitOfWork

    engine = create_engine(database_url)
    try:
        async with SqlUnitOfWork(engine) as uow:
            ids = []
            for n in range(PRODUCTS):
                product = Product.new(
                    id=str(uuid.uuid4()),
                    sku=f"BENCH-{n:03d}",
                    name=f"Bench product {n}",
                    description=None,
                    price="9.99",
                    stock=STOCK,
                    currency="EUR",
                    now=datetime.now(UTC),
                )
                await uow.products.add(product)
                ids.append(product.id)
            await uow.commit()
    finally:
        await engine.dispose()
    return ids


async def stock_and_orders(database_url: str, product_ids: list[str]) -> tuple[int, int]:
    from backend.infrastructure.db.engine import create_engine
    from backend.infrastructure.db.tables import orders, products

    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            stock = (
                await conn.execute(
                    select(func.sum(products.c.stock)).where(products.c.id.in_(product_ids))
                )
            ).scalar_one()
            placed = (await conn.execute(select(func.count()).select_from(orders))).scalar_one()
    finally:
        await engine.dispose()
    return int(stock), int(placed)


def start_server(
    database_url: str, port: int, tmp: str, key_prefix: str
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "ENVIRONMENT": "test",
        "DATABASE_URL": database_url,
        "SECRET_KEY": uuid.uuid4().hex * 2,
        "RATE_LIMIT_ENABLED": "false",
        "BCRYPT_ROUNDS": "4",
        "LOG_LEVEL": "WARNING",
        "CELERY_BROKER_DIR": tmp,
        "REDIS_URL": os.environ.get("BENCH_REDIS_URL", ""),
        "REDIS_KEY_PREFIX": key_prefix,  # everything the run leaves in Redis, deleted after
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    command = [
        sys.executable, "-m", "uvicorn", "--factory", "backend.api.app:create_app",
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
    return subprocess.Popen(command, env=env, cwd=ROOT)


async def wait_until_up(client: httpx.AsyncClient, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the API exited with {server.returncode}")
        try:
            if (await client.get("/api/v1/health")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError("the API did not start within 30 s")


async def token_for(client: httpx.AsyncClient) -> str:
    email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
    registered = await client.post(
        "/api/v1/auth/register", json={"email": email, "password": PASSWORD}
    )
    assert registered.status_code == 201, registered.text
    login = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    return str(login.json()["access_token"])


async def load(call: Callable[[], Awaitable[int]], seconds: float) -> tuple[float, list[float]]:
    """(requests per second, latencies) with CONCURRENCY requests in flight for `seconds`."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            status = await call()
            latencies.append(time.perf_counter() - started)
            assert status in (200, 201), status

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return len(latencies) / (time.perf_counter() - started), latencies


async def drive(base_url: str, server: subprocess.Popen[bytes], ids: list[str]) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as client:
        await wait_until_up(client, server)
        headers = {"Authorization": f"Bearer {await token_for(client)}"}
        rng = random.Random(5)
        ordered = {"units": 0}

        async def health() -> int:
            return (await client.get("/api/v1/health")).status_code

        async def order() -> int:
            lines = [{"product_id": p, "quantity": 1} for p in rng.sample(ids, rng.randint(1, 3))]
            response = await client.post("/api/v1/orders", json={"items": lines}, headers=headers)
            if response.status_code == 201:
                ordered["units"] += len(lines)
            return response.status_code

        await load(health, 1.0)  # warm up both paths
        await load(order, 1.0)
        base_rates, order_rates, base_lat, order_lat = [], [], [], []
        for _ in range(ROUNDS):
            rate, lat = await load(health, SECONDS)
            base_rates.append(rate)
            base_lat += lat
            rate, lat = await load(order, SECONDS)
            order_rates.append(rate)
            order_lat += lat
    base, orders = statistics.median(base_rates), statistics.median(order_rates)
    return {
        "ratio": orders / base,
        "orders_per_s": round(orders, 1),
        "health_per_s": round(base, 1),
        "orders_p50_ms": round(statistics.median(order_lat) * 1000, 2),
        "orders_p99_ms": round(percentile(order_lat, 0.99) * 1000, 2),
        "health_p50_ms": round(statistics.median(base_lat) * 1000, 2),
        "health_p99_ms": round(percentile(base_lat, 0.99) * 1000, 2),
        "concurrency": CONCURRENCY,
        "units_ordered": ordered["units"],
    }


def run() -> dict[str, Any]:
    server_url = os.environ.get("BENCH_DATABASE_URL")
    if not server_url:
        return {
            "name": NAME,
            "ratio": float("nan"),
            "target": None,
            "skipped": "set BENCH_DATABASE_URL to a PostgreSQL server to run this scenario",
        }
    name = f"orderflow_bench_{uuid.uuid4().hex[:10]}"
    prefix = f"{name}:"
    database_url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    asyncio.run(admin_sql(server_url, f'CREATE DATABASE "{name}"'))
    try:
        migrate(database_url)
        ids = asyncio.run(seed_products(database_url))
        with tempfile.TemporaryDirectory() as tmp:
            port = free_port()
            server = start_server(database_url, port, tmp, prefix)
            try:
                result = asyncio.run(drive(f"http://127.0.0.1:{port}", server, ids))
            finally:
                server.terminate()
                server.wait(timeout=30)
        stock, placed = asyncio.run(stock_and_orders(database_url, ids))
        # Every unit the 201s promised is gone from stock, and nothing more.
        result["stock_consistent"] = stock == PRODUCTS * STOCK - result["units_ordered"]
        result["orders_placed"] = placed
        result["broker"] = "redis" if os.environ.get("BENCH_REDIS_URL") else "embedded"
    finally:
        asyncio.run(admin_sql(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        delete_redis_keys(prefix)
    return {"name": NAME, "target": None, **result}
