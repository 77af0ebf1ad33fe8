"""Measurement helpers: interleaved rounds so drift hits baseline and subject alike."""

from __future__ import annotations

import os
import socket
import statistics
import time
from collections.abc import Awaitable, Callable

import asyncpg
from sqlalchemy.engine import make_url

from backend import cli

__all__ = [
    "admin_sql",
    "compare",
    "delete_redis_keys",
    "free_port",
    "migrate",
    "percentile",
    "rate",
]


async def rate(call: Callable[[], Awaitable[object]], seconds: float) -> float:
    """Calls per second of `call`, awaited back to back for `seconds`."""
    done = 0
    started = time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        await call()
        done += 1
    return done / (time.perf_counter() - started)


async def compare(
    baseline: Callable[[], Awaitable[object]],
    subject: Callable[[], Awaitable[object]],
    *,
    rounds: int = 11,
    seconds: float = 0.3,
) -> dict[str, float]:
    """Subject/baseline as the median of per-round ratios, plus the median rates.

    Each round measures both back to back (which goes first alternates), so a slow stretch
    of a shared machine lands on one pair and the median drops it, instead of skewing
    one side's rate.
    """
    for _ in range(50):  # warm up both
        await baseline()
        await subject()
    base_rates, subject_rates, ratios = [], [], []
    for round_no in range(rounds):
        if round_no % 2:
            sub = await rate(subject, seconds)
            base = await rate(baseline, seconds)
        else:
            base = await rate(baseline, seconds)
            sub = await rate(subject, seconds)
        base_rates.append(base)
        subject_rates.append(sub)
        ratios.append(sub / base)
    return {
        "baseline_per_s": round(statistics.median(base_rates), 1),
        "subject_per_s": round(statistics.median(subject_rates), 1),
        "ratio": statistics.median(ratios),
    }


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def migrate(database_url: str) -> None:
    """Migrate a throwaway benchmark database to head (what `make migrate` runs)."""
    cli.migrate(database_url=database_url)


async def admin_sql(server_url: str, statement: str) -> None:
    """One statement on the server's maintenance database (CREATE/DROP DATABASE)."""
    dsn = make_url(server_url).set(drivername="postgresql", database="postgres")
    conn = await asyncpg.connect(dsn.render_as_string(hide_password=False))
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def delete_redis_keys(prefix: str) -> None:
    """The keys a run left behind on BENCH_REDIS_URL (relay kicks, cache entries)."""
    redis_url = os.environ.get("BENCH_REDIS_URL")
    if not redis_url:
        return
    from redis import Redis

    client = Redis.from_url(redis_url)
    try:
        for key in client.scan_iter(match=f"{prefix}*", count=1000):
            client.delete(key)
    finally:
        client.close()
