"""The workflow's throughput on PostgreSQL, each beside a baseline measured in the same run.

1. The progression job `start_processing` (approved -> processing, batches of 200 claimed
   with SKIP LOCKED, one commit per batch) over N approved orders, orders moved per
   second. Baseline: the SQL a hand-written loop would run for the same move (claim a
   batch with SKIP LOCKED, then per order one compare-and-set UPDATE, one history INSERT,
   one outbox INSERT; commit per batch), without the service layer. The two take turns
   on the same table, 10 batches each, until no approved order is left (each moves about
   N/2): load on a shared machine hits both alike. ratio = job / baseline;
   `job_seconds_for_n` extrapolates one job run over all N orders.
2. The outbox relay end to end: M events committed at once, until a real Celery worker
   (concurrency 2) has relayed, dispatched and marked every one handled; events per
   second. Baseline: M bare tasks published straight to the same broker and run by the
   same worker (a heartbeat, one `SELECT 1`). ratio = outbox / bare Celery.

Needs BENCH_DATABASE_URL (a PostgreSQL server, e.g. postgresql+asyncpg://postgres@127.0.0.1:5432);
skipped with a message otherwise. BENCH_REDIS_URL, when set, is the broker; otherwise the
embedded SQLite broker. Sizes: BENCH_WORKFLOW_ORDERS (default 100,000, the issue's number;
about two minutes for both runs on 2 cores) and BENCH_OUTBOX_EVENTS (default 5,000).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from backend.core.config import Settings
from backend.domain.clock import SystemClock
from backend.domain.events import DomainEvent
from backend.infrastructure.db.tables import (
    order_lines,
    order_status_history,
    orders,
    outbox_events,
    products,
    users,
)
from backend.infrastructure.db.uow import SqlUnitOfWork
from backend.services.progression import WorkflowPolicy, run_workflow_job
from bench.harness import admin_sql, delete_redis_keys, free_port, migrate

ROOT = Path(__file__).resolve().parent.parent
N_ORDERS = int(os.environ.get("BENCH_WORKFLOW_ORDERS", "100000"))
N_EVENTS = int(os.environ.get("BENCH_OUTBOX_EVENTS", "5000"))
BATCH = 200
SLICE_BATCHES = 10  # turns of 2,000 orders
HEARTBEAT = "orderflow.heartbeat"
JOB_NAME = "progression job start_processing vs hand-written SQL loop (PostgreSQL)"
RELAY_NAME = "outbox relay end to end vs bare Celery tasks (PostgreSQL)"


# --------------------------------------------------------------------------- database


async def seed_approved_orders(engine: AsyncEngine, n: int) -> None:
    """N approved orders of one line each, written in bulk (the setup is not measured)."""
    now = datetime.now(UTC) - timedelta(days=1)
    user_id, product_id = str(uuid.uuid4()), str(uuid.uuid4())
    async with engine.begin() as conn:
        await conn.execute(
            insert(users).values(
                id=user_id,
                email=f"bench-{user_id[:8]}@example.com",
                full_name=None,
                role="customer",
                is_active=True,
                password_hash="not-a-hash",  # noqa: S106  (a bench user never logs in)
                created_at=now,
                updated_at=now,
            )
        )
        await conn.execute(
            insert(products).values(
                id=product_id,
                sku=f"BENCH-{product_id[:8]}",
                name="Bench product",
                description=None,
                price=10,
                currency="EUR",
                stock=0,
                is_active=True,
                version=1,
                created_at=now,
                updated_at=now,
            )
        )
    for start in range(0, n, 5000):
        chunk = [str(uuid.uuid4()) for _ in range(min(5000, n - start))]
        async with engine.begin() as conn:
            await conn.execute(
                insert(orders),
                [
                    {
                        "id": oid,
                        "user_id": user_id,
                        "status": "approved",
                        "total": 10,
                        "currency": "EUR",
                        "version": 3,
                        "created_at": now + timedelta(microseconds=start + i),
                        "updated_at": now,
                    }
                    for i, oid in enumerate(chunk)
                ],
            )
            await conn.execute(
                insert(order_lines),
                [
                    {
                        "order_id": oid,
                        "line_no": 1,
                        "product_id": product_id,
                        "sku": "BENCH",
                        "product_name": "Bench product",
                        "unit_price": 10,
                        "quantity": 1,
                    }
                    for oid in chunk
                ],
            )


async def vacuum(server_url: str, database: str) -> None:
    dsn = make_url(server_url).set(drivername="postgresql", database=database)
    conn = await asyncpg.connect(dsn.render_as_string(hide_password=False))
    try:
        await conn.execute("VACUUM ANALYZE")  # fresh statistics for the claim query
    finally:
        await conn.close()


# --------------------------------------------------------------------------- 1. the job
async def hand_written_loop(engine: AsyncEngine, max_batches: int) -> int:
    """What the job does, as bare SQL: the floor the service layer is measured against."""
    moved = 0
    for _ in range(max_batches):
        async with engine.begin() as conn:
            ids = (
                (
                    await conn.execute(
                        select(orders.c.id)
                        .where(orders.c.status == "approved")
                        .order_by(orders.c.created_at, orders.c.id)
                        .limit(BATCH)
                        .with_for_update(skip_locked=True)
                    )
                )
                .scalars()
                .all()
            )
            now = datetime.now(UTC)
            for oid in ids:
                await conn.execute(
                    update(orders)
                    .where(orders.c.id == oid, orders.c.status == "approved")
                    .values(status="processing", version=orders.c.version + 1, updated_at=now)
                )
                await conn.execute(
                    insert(order_status_history).values(
                        order_id=oid,
                        from_status="approved",
                        to_status="processing",
                        actor="system",
                        at=now,
                    )
                )
                await conn.execute(
                    insert(outbox_events).values(
                        id=str(uuid.uuid4()),
                        type="order.status_changed",
                        aggregate_type="order",
                        aggregate_id=oid,
                        payload={"order_id": oid, "to_status": "processing"},
                        created_at=now,
                        attempts=0,
                    )
                )
        moved += len(ids)
        if len(ids) < BATCH:
            break
    return moved


async def the_job(engine: AsyncEngine, max_batches: int) -> int:
    report = await run_workflow_job(
        "start_processing",
        lambda: SqlUnitOfWork(engine),  # no after-commit kick: no broker in this part
        SystemClock(),
        WorkflowPolicy(batch_size=BATCH),
        max_batches=max_batches,
    )
    return report.moved


async def measure_job(database_url: str, server_url: str, database: str) -> dict[str, Any]:
    engine = create_async_engine(database_url, pool_size=2)
    try:
        await seed_approved_orders(engine, N_ORDERS)
        await vacuum(server_url, database)
        seconds = {"baseline": 0.0, "job": 0.0}
        moved = {"baseline": 0, "job": 0}
        runs = {"baseline": hand_written_loop, "job": the_job}
        while sum(moved.values()) < N_ORDERS:
            for label, run in runs.items():
                started = time.perf_counter()
                moved[label] += await run(engine, SLICE_BATCHES)
                seconds[label] += time.perf_counter() - started
        async with engine.connect() as conn:
            processing = (
                await conn.execute(
                    select(func.count()).select_from(orders).where(orders.c.status == "processing")
                )
            ).scalar_one()
    finally:
        await engine.dispose()
    job_rate = moved["job"] / seconds["job"]
    base_rate = moved["baseline"] / seconds["baseline"]
    return {
        "name": JOB_NAME,
        "target": None,
        "ratio": job_rate / base_rate,
        "orders": N_ORDERS,
        "job_orders_per_s": round(job_rate, 1),
        "baseline_orders_per_s": round(base_rate, 1),
        "moved_by_job_and_baseline": (moved["job"], moved["baseline"]),
        "job_seconds_for_n": round(N_ORDERS / job_rate, 1),
        "all_moved_once": processing == N_ORDERS,
    }


# --------------------------------------------------------------------------- 2. the relay


def worker_env(database_url: str, tmp: str, port: int, prefix: str) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "ENVIRONMENT": "test",
        "DATABASE_URL": database_url,
        "REDIS_URL": os.environ.get("BENCH_REDIS_URL", ""),
        "REDIS_KEY_PREFIX": prefix,
        "CELERY_BROKER_DIR": tmp,
        "WORKER_METRICS_PORT": str(port),
        "HOST": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
        "OUTBOX_POLL_INTERVAL": "3600",  # only the after-commit kick relays here
        "ORDER_PROGRESSION_INTERVAL": "3600",
        "HEARTBEAT_INTERVAL": "3600",
    }


def counter(port: int, name: str, **labels: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    try:
        body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except httpx.HTTPError:
        return -1.0
    for family in text_string_to_metric_families(body):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0


async def unhandled(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        statement = select(func.count()).select_from(outbox_events)
        return int(
            (await conn.execute(statement.where(outbox_events.c.handled_at.is_(None)))).scalar_one()
        )


async def relay_subject(settings: Settings) -> float:
    from backend.bootstrap import build_container

    container = await build_container(settings)
    try:
        async with container.engine.begin() as conn:
            await conn.execute(outbox_events.delete())
        started = time.perf_counter()
        async with container.uow() as uow:  # one commit, one kick, M events
            for i in range(N_EVENTS):
                await uow.outbox.add(DomainEvent("bench.ping", "bench", str(i), {"i": i}))
            await uow.commit()
        while await unhandled(container.engine):
            await asyncio.sleep(0.05)
        return time.perf_counter() - started
    finally:
        await container.aclose()


async def bare_baseline(settings: Settings, port: int) -> float:
    from backend.bootstrap import build_container

    container = await build_container(settings)
    try:

        def done() -> float:
            return counter(port, "worker_tasks_total", task=HEARTBEAT, outcome="success")

        before = done()
        started = time.perf_counter()
        with container.celery.producer_or_acquire() as producer:
            for _ in range(N_EVENTS):
                container.celery.send_task(HEARTBEAT, producer=producer)
        goal = before + N_EVENTS
        while done() < goal:
            await asyncio.sleep(0.05)
        return time.perf_counter() - started
    finally:
        await container.aclose()


def measure_relay(database_url: str, prefix: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        env = worker_env(database_url, tmp, port, prefix)
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "worker.celery_app", "worker",
             "--concurrency", "2", "--loglevel", "WARNING", "--without-gossip",
             "--without-mingle", "--without-heartbeat",
             "--queues", "default,workflow,notifications"],
            cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            while counter(port, "worker_tasks_total") < 0:
                time.sleep(0.2)
            settings = Settings(
                _env_file=None,  # type: ignore[call-arg]
                environment="test",
                database_url=database_url,
                redis_url=env["REDIS_URL"] or None,
                redis_key_prefix=prefix,
                celery_broker_dir=tmp,
                log_level="WARNING",
                outbox_poll_interval=3600,
            )
            baseline = asyncio.run(bare_baseline(settings, port))
            subject = asyncio.run(relay_subject(settings))
        finally:
            worker.terminate()
            worker.wait(timeout=60)
    events_rate, bare_rate = N_EVENTS / subject, N_EVENTS / baseline
    return {
        "name": RELAY_NAME,
        "target": None,
        "ratio": events_rate / bare_rate,
        "events": N_EVENTS,
        "outbox_events_per_s": round(events_rate, 1),
        "bare_tasks_per_s": round(bare_rate, 1),
        "broker": "redis" if os.environ.get("BENCH_REDIS_URL") else "embedded (SQLite)",
    }


def run() -> list[dict[str, Any]]:
    server_url = os.environ.get("BENCH_DATABASE_URL")
    if not server_url:
        skipped = "set BENCH_DATABASE_URL to a PostgreSQL server to run this scenario"
        return [
            {"name": name, "ratio": float("nan"), "target": None, "skipped": skipped}
            for name in (JOB_NAME, RELAY_NAME)
        ]
    database = f"orderflow_bench_{uuid.uuid4().hex[:10]}"
    prefix = f"{database}:"
    database_url = make_url(server_url).set(database=database).render_as_string(hide_password=False)
    asyncio.run(admin_sql(server_url, f'CREATE DATABASE "{database}"'))
    try:
        migrate(database_url)
        job = asyncio.run(measure_job(database_url, server_url, database))
        relay = measure_relay(database_url, prefix)
    finally:
        asyncio.run(admin_sql(server_url, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        delete_redis_keys(prefix)
    return [job, relay]


if __name__ == "__main__":  # python -m bench.scenario_workflow
    for result in run():
        print(result)
