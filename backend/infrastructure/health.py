"""Readiness checks: each dependency answered within a short timeout."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from celery import Celery
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

Check = Callable[[], Awaitable[None]]


async def run_check(check: Check | None, timeout: float) -> dict[str, Any]:
    if check is None:
        return {"status": "skipped"}
    started = time.perf_counter()
    try:
        await asyncio.wait_for(check(), timeout)
    except TimeoutError:
        return {"status": "error", "error": f"timed out after {timeout:g}s"}
    except Exception as error:
        return {"status": "error", "error": type(error).__name__}
    return {"status": "ok", "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


def database_check(engine: AsyncEngine) -> Check:
    async def check() -> None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    return check


def redis_check(redis: Redis) -> Check:
    async def check() -> None:
        await redis.ping()

    return check


def broker_check(app: Celery) -> Check:
    def connect() -> None:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)

    async def check() -> None:
        await asyncio.to_thread(connect)

    return check
