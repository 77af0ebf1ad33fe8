"""Measurement helpers: interleaved rounds so drift hits baseline and subject alike."""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable


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
    rounds: int = 5,
    seconds: float = 0.6,
) -> dict[str, float]:
    """Median rates over interleaved rounds, and subject/baseline."""
    for _ in range(50):  # warm up both
        await baseline()
        await subject()
    base_rates, subject_rates = [], []
    for _ in range(rounds):
        base_rates.append(await rate(baseline, seconds))
        subject_rates.append(await rate(subject, seconds))
    base, sub = statistics.median(base_rates), statistics.median(subject_rates)
    return {"baseline_per_s": round(base, 1), "subject_per_s": round(sub, 1), "ratio": sub / base}


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
