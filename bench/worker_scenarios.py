"""The scenarios a Celery worker runs (5, 6): one worker process, concurrency 1, on the
server core, tasks sent by name as Beat and the after-commit kick send them."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
from prometheus_client.parser import text_string_to_metric_families

from backend.core.tasks import HEARTBEAT, START_PROCESSING
from backend.core.tasks import RELAY_OUTBOX as RELAY
from backend.infrastructure.messaging.celery import make_celery
from bench.fixtures import plain_dsn
from bench.results import Result, Target
from bench.servers import Stack

BATCH = 200


@dataclass(frozen=True, slots=True)
class Workload:
    orders: int  # scenario 5
    events: int  # scenario 6
    window: float  # seconds at most per measurement


class Broker:
    """Sends tasks by name to the run's broker, as Beat and the API do."""

    def __init__(self, stack: Stack) -> None:
        self.app = make_celery(stack.redis_url, key_prefix=stack.key_prefix)

    def send(self, task: str, times: int = 1) -> None:
        with self.app.producer_or_acquire() as producer:
            for _ in range(times):
                self.app.send_task(task, producer=producer)

    def close(self) -> None:
        self.app.close()


def counter(port: int, name: str, **labels: str) -> float:
    body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    total = 0.0
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def consumers_seen(port: int) -> list[str]:
    body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return sorted(
        {
            sample.labels["consumer"]
            for family in text_string_to_metric_families(body)
            for sample in family.samples
            if "consumer" in sample.labels and sample.value
        }
    )


async def _scalar(dsn: str, query: str, *args: object) -> Any:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(query, *args)
    finally:
        await conn.close()


def scalar(database_url: str, query: str, *args: object) -> Any:
    return asyncio.run(_scalar(plain_dsn(database_url), query, *args))


async def _execute(dsn: str, query: str, *args: object) -> str:
    conn = await asyncpg.connect(dsn)
    try:
        return str(await conn.execute(query, *args))
    finally:
        await conn.close()


def execute(database_url: str, query: str, *args: object) -> str:
    return asyncio.run(_execute(plain_dsn(database_url), query, *args))


def seed_orders(stack: Stack, n: int) -> None:
    """N approved orders of one line each (scenario 5 moves them; scenario 6's events name
    them), written by the database itself: the setup is not measured."""
    execute(stack.database_url, SEED_ORDERS, n)
    execute(stack.database_url, "VACUUM ANALYZE orders")


# --------------------------------------------------------------------------- data
SEED_ORDERS = """
WITH bench_user AS (
  INSERT INTO users (id, email, full_name, role, is_active, password_hash, created_at, updated_at)
  VALUES (gen_random_uuid(), 'workflow-' || gen_random_uuid() || '@example.com', NULL,
          'customer', true, 'not-a-hash', now(), now())
  RETURNING id
), product AS (SELECT id, sku, name FROM products ORDER BY sku LIMIT 1),
new_orders AS (
  INSERT INTO orders (id, user_id, status, total, currency, version, created_at, updated_at)
  SELECT gen_random_uuid(), bench_user.id, 'approved', 450, 'EUR', 3,
         now() - interval '1 day' + n * interval '1 microsecond', now() - interval '1 day'
  FROM bench_user, generate_series(1, $1) AS n
  RETURNING id
)
INSERT INTO order_lines (order_id, line_no, product_id, sku, product_name, unit_price, quantity)
SELECT new_orders.id, 1, product.id, product.sku, product.name, 450, 1
FROM new_orders, product
"""

# The floor for scenario 5: claim, move, history and outbox rows of a batch in one statement.
SET_BASED_BATCH = """
WITH claimed AS (
  SELECT id FROM orders WHERE status = 'approved'
  ORDER BY created_at, id LIMIT $1 FOR UPDATE SKIP LOCKED
), moved AS (
  UPDATE orders o SET status = 'processing', version = o.version + 1, updated_at = now()
  FROM claimed WHERE o.id = claimed.id RETURNING o.id, o.user_id
), history AS (
  INSERT INTO order_status_history (order_id, from_status, to_status, actor, at)
  SELECT id, 'approved', 'processing', 'system', now() FROM moved
)
INSERT INTO outbox_events (id, type, aggregate_type, aggregate_id, payload, created_at, attempts)
SELECT gen_random_uuid(), 'order.status_changed', 'order', id::text,
       json_build_object('order_id', id, 'user_id', user_id, 'from_status', 'approved',
                         'to_status', 'processing', 'status', 'processing'), now(), 0
FROM moved
"""

STATUS_EVENTS = """
INSERT INTO outbox_events (id, type, aggregate_type, aggregate_id, payload, created_at, attempts)
SELECT gen_random_uuid(), 'order.status_changed', 'order', o.id::text,
       $2::jsonb || jsonb_build_object('order_id', o.id, 'user_id', o.user_id), now(), 0
FROM orders o ORDER BY o.created_at LIMIT $1
"""


async def _set_based_loop(dsn: str, window: float) -> int:
    conn = await asyncpg.connect(dsn)
    moved = 0
    deadline = time.perf_counter() + window
    try:
        while time.perf_counter() < deadline:
            async with conn.transaction():
                status = await conn.execute(SET_BASED_BATCH, BATCH)
            n = int(status.rsplit(" ", 1)[-1])
            moved += n
            if n < BATCH:
                break
        return moved
    finally:
        await conn.close()


def reset_orders(database_url: str) -> None:
    async def reset() -> None:
        conn = await asyncpg.connect(plain_dsn(database_url))
        try:
            await conn.execute("DELETE FROM outbox_events")
            await conn.execute("DELETE FROM order_status_history")
            await conn.execute(
                "UPDATE orders SET status = 'approved', version = 3 WHERE status = 'processing'"
            )
            await conn.execute("VACUUM ANALYZE orders")
        finally:
            await conn.close()

    asyncio.run(reset())


# --------------------------------------------------------------------------- scenarios
def progress(done: Any, goal: int, window: float) -> tuple[int, float]:
    """(how many of `goal` were done, seconds) when all were or `window` ran out: a slow
    path is measured over the window instead of holding the run for minutes."""
    started = time.perf_counter()
    while True:
        count = int(done())
        elapsed = time.perf_counter() - started
        if count >= goal or elapsed >= window:
            return count, elapsed
        time.sleep(0.05)


def outbox_dispatch(stack: Stack, broker: Broker, port: int, work: Workload) -> Result:
    """6: M status-change events committed at once and one relay kick (what a commit's
    after-commit hook sends); events relayed, dispatched to every consumer and marked
    handled per second. Baseline: M bare heartbeat tasks through the same broker and worker."""
    before = counter(port, "worker_tasks_total", task=HEARTBEAT, outcome="success")
    broker.send(HEARTBEAT, work.events)
    bare_done, bare_seconds = progress(
        lambda: counter(port, "worker_tasks_total", task=HEARTBEAT, outcome="success") - before,
        work.events,
        work.window,
    )
    broker.app.control.purge()  # heartbeats the window cut off would queue ahead of the relay
    execute(stack.database_url, "DELETE FROM outbox_events")
    payload = {"from_status": "approved", "to_status": "processing", "status": "processing"}
    execute(stack.database_url, STATUS_EVENTS, work.events, json.dumps(payload))
    broker.send(RELAY)
    handled, seconds = progress(
        lambda: scalar(
            stack.database_url, "SELECT count(*) FROM outbox_events WHERE handled_at IS NOT NULL"
        ),
        work.events,
        work.window,
    )
    rate, bare_rate = handled / seconds, bare_done / bare_seconds
    return Result(
        name="6 outbox to dispatched event, one worker",
        value=rate,
        unit="events/s",
        baseline=bare_rate,
        ratio=rate / bare_rate,
        target=Target("value", ">=", 1000),
        details={
            "events_handled": f"{handled} of {work.events} in {seconds:.1f} s",
            "baseline": "bare heartbeat tasks through the same broker and worker",
            "consumers_that_handled_events": consumers_seen(port) or "none subscribed",
        },
    )


def progression(stack: Stack, broker: Broker, work: Workload) -> Result:
    """5: Beat's start_processing job over the N approved orders `seed_orders` wrote,
    transitions per second; baseline: the same move as one set-based statement per batch."""
    reset_orders(stack.database_url)
    started = time.perf_counter()
    baseline_moved = asyncio.run(_set_based_loop(plain_dsn(stack.database_url), work.window))
    baseline_seconds = time.perf_counter() - started
    reset_orders(stack.database_url)
    broker.send(START_PROCESSING)
    moved, seconds = progress(
        lambda: scalar(
            stack.database_url, "SELECT count(*) FROM orders WHERE status = 'processing'"
        ),
        work.orders,
        work.window,
    )
    rate, bare_rate = moved / seconds, baseline_moved / baseline_seconds
    return Result(
        name=f"5 Beat progression over {work.orders:,} orders",
        value=rate,
        unit="transitions/s",
        baseline=bare_rate,
        ratio=rate / bare_rate,
        target=Target("value", ">=", 20_000),
        details={
            "moved": f"{moved} of {work.orders} in {seconds:.1f} s",
            "baseline": "one set-based statement per batch of 200 (claim, move, history, outbox)",
        },
    )
