"""The scenarios wrk drives against the real API and its baselines (1-4, 7, 8, 9)."""

from __future__ import annotations

import gc
import statistics
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.fixtures import PASSWORD
from bench.profile import profiled
from bench.results import Result, Target
from bench.rounds import interleave, statuses
from bench.servers import Server
from bench.wrk import Load, Outcome, Wrk

ORDER_BODY = '{"items":[{"product_id":"{id}","quantity":1}]}'
LONG_ROUND = 10  # seconds: longer than the API's pool timeout


@dataclass(frozen=True, slots=True)
class Plan:
    rounds: int
    seconds: int  # wrk takes whole seconds
    warm_up: int
    rss_requests: int  # scenario 8 reads memory after this many requests and after twice as many
    rss_seconds: int  # ... or after half and all it served in this long
    connections: int = 32  # few enough that a round is many times one request's latency


@dataclass(slots=True)
class Http:
    """Everything the HTTP scenarios share: the load generator, the servers, the data."""

    wrk: Wrk
    plan: Plan
    api: Server  # rate limiting off, bcrypt at the production cost
    limited: Server  # the same with Redis rate limiting on
    baselines: Server
    product_ids: Path
    order_ids: Path
    token: str
    email: str
    run_tag: str

    def compare(
        self,
        name: str,
        subject: tuple[Server, Load],
        baseline: Load,
        *,
        rounds: int | None = None,
        seconds: int | None = None,
    ) -> Result:
        server, load = subject
        seconds = seconds or self.plan.seconds
        self.wrk.run(self.baselines.base_url, baseline, self.plan.warm_up)
        self.wrk.run(server.base_url, load, self.plan.warm_up)
        with profiled(server.process.pid, name):
            measured = interleave(
                lambda: self.wrk.run(self.baselines.base_url, baseline, seconds),
                lambda: self.wrk.run(server.base_url, load, seconds),
                rounds or self.plan.rounds,
            )
        return Result(
            name=name,
            value=measured.subject_rate,
            unit="req/s",
            baseline=measured.baseline_rate,
            ratio=measured.ratio,
            target=None,
            details=measured.summary(),
        )

    def product_load(self) -> Load:
        return Load(
            path="/api/v1/products/{id}",
            ids_file=self.product_ids,
            connections=self.plan.connections,
        )

    def order_read(self, connections: int | None = None) -> Load:
        return Load(
            path="/api/v1/orders/{id}",
            ids_file=self.order_ids,
            token=self.token,
            connections=connections or self.plan.connections,
        )


def cached_product(http: Http) -> Result:
    """1: GET /products/{id} from the cache vs (c), rate limiting off."""
    load = http.product_load()
    result = http.compare("1 cached GET /products/{id} vs bare route", (http.api, load), load)
    result.target = Target("ratio", ">=", 1.0)
    return result


def rate_limited_product(http: Http) -> Result:
    """2: the same with Redis rate limiting on (limits far above the load) vs (c)."""
    load = http.product_load()
    result = http.compare(
        "2 cached GET /products/{id}, rate limited, vs bare route", (http.limited, load), load
    )
    result.target = Target("ratio", ">=", 0.6)
    return result


def owner_order_read(http: Http) -> Result:
    """3: the owner's GET /orders/{id} vs (d) one asyncpg fetchrow."""
    load = http.order_read()
    result = http.compare("3 owner GET /orders/{id} vs one fetchrow", (http.api, load), load)
    result.target = Target("ratio", ">=", 0.5)
    return result


def place_order(http: Http) -> Result:
    """4: POST /orders, one line, a unique Idempotency-Key each, vs (h) one conditional
    UPDATE in a transaction."""
    common = {
        "method": "POST",
        "path": "/api/v1/orders",
        "ids_file": http.product_ids,
        "connections": http.plan.connections,
    }
    subject = Load(
        **common,  # type: ignore[arg-type]
        token=http.token,
        body=ORDER_BODY,
        idempotency=f"bench-{http.run_tag}",
    )
    baseline = Load(**common, body=ORDER_BODY)  # type: ignore[arg-type]
    result = http.compare("4 POST /orders vs one conditional UPDATE", (http.api, subject), baseline)
    result.target = Target("ratio", ">=", 0.4)
    return result


def many_connections(http: Http) -> Result:
    """9: scenario 3 at 256 connections: no 5xx (no pool-wait 503), p99 reported. One long
    round: with 256 requests queued, a request waits seconds, longer than a short round."""
    load = http.order_read(connections=256)
    result = http.compare(
        "9 owner GET /orders/{id} at 256 connections: 5xx",
        (http.api, load),
        load,
        rounds=1,
        seconds=LONG_ROUND,
    )
    outcomes: dict[str, int] = result.details["subject_statuses"]
    errors = sum(n for status, n in outcomes.items() if status.startswith(("5", "socket")))
    result.details["subject_req_per_s"] = round(result.value, 1)
    result.value, result.unit, result.baseline = float(errors), "5xx or failed", None
    result.target = Target("value", "<=", 0)
    return result


# --------------------------------------------------------------------------- 7. event loop
SAMPLE_INTERVAL = 0.01
SETTLE = 5.0


def health_latencies(base_url: str, seconds: float) -> list[float]:
    """/health requests on a fixed schedule, each timed from when it was due: a blocked loop's
    wait counts (no coordinated omission).

    The sampling client's own garbage collector is held off while it samples: a full
    collection of this process's heap (the fixtures, every scenario's results) takes 50-100
    ms, which landed in the idle or the busy samples at random and swung the ratio from 0.8
    to 26 between runs of the same code."""
    gc.collect()
    gc.disable()
    try:
        return _sample_health(base_url, seconds)
    finally:
        gc.enable()


def _sample_health(base_url: str, seconds: float) -> list[float]:
    latencies = []
    with httpx.Client(base_url=base_url, timeout=30) as client:
        start = time.perf_counter()
        for i in range(int(seconds / SAMPLE_INTERVAL)):
            due = start + i * SAMPLE_INTERVAL
            time.sleep(max(0.0, due - time.perf_counter()))
            response = client.get("/api/v1/health")
            latencies.append(time.perf_counter() - due)
            response.raise_for_status()
    return latencies


def p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def health_during_logins(http: Http, clients: int = 20) -> Result:
    """7: /health p99 while `clients` connections log in back to back (bcrypt cost 12)."""
    seconds = max(3, http.plan.seconds * 2)
    body = f'{{"email":"{http.email}","password":"{PASSWORD}"}}'
    logins = Load(method="POST", path="/api/v1/auth/login", body=body, connections=clients)
    time.sleep(SETTLE)  # the previous scenario's last requests are still being answered
    health_latencies(http.api.base_url, 0.5)  # warm up
    idle = health_latencies(http.api.base_url, seconds)
    busy: list[float] = []
    login_outcome: list[Outcome] = []
    load = threading.Thread(
        target=lambda: login_outcome.append(http.wrk.run(http.api.base_url, logins, seconds + 2))
    )
    load.start()
    time.sleep(1.0)  # every connection is waiting on a hash by now
    busy = health_latencies(http.api.base_url, seconds)
    load.join()
    idle_p99, busy_p99 = p99(idle) * 1000, p99(busy) * 1000
    return Result(
        name=f"7 /health p99 during {clients} logins (bcrypt 12) vs idle",
        value=busy_p99,
        unit="ms",
        baseline=idle_p99,
        ratio=busy_p99 / idle_p99,
        target=Target("ratio", "<=", 2.0),
        details={
            "idle_p50_ms": round(statistics.median(idle) * 1000, 2),
            "busy_p50_ms": round(statistics.median(busy) * 1000, 2),
            "busy_max_ms": round(max(busy) * 1000, 2),
            "logins_per_s": round(login_outcome[0].per_second, 1),
            "login_statuses": statuses(login_outcome),
        },
    )


# --------------------------------------------------------------------------- 8. memory
def memory_growth(http: Http) -> Result:
    """8: resident memory after N requests and after 2N (the owner's order read and cached
    product reads in turns: token checks, queries, cache hits, metrics, logs). A slow
    machine stops at the plan's time limit; the readings are then at half and all of what
    was served, and the details say so."""
    loads = [http.order_read(), http.product_load(), http.product_load()]
    served, turn, readings = 0, 0, []  # (requests served, RSS bytes) after each chunk
    goal, started = 2 * http.plan.rss_requests, time.perf_counter()
    while served < goal and time.perf_counter() - started < http.plan.rss_seconds:
        served += http.wrk.run(http.api.base_url, loads[turn % len(loads)], 5).requests
        turn += 1
        readings.append((served, http.api.rss_bytes()))
    half = next(r for r in readings if r[0] >= served / 2)
    first, last = half[1], readings[-1][1]
    growth = (last - first) / first * 100
    n = http.plan.rss_requests
    return Result(
        name=f"8 RSS growth from {n // 1000}k to {2 * n // 1000}k requests",
        value=growth,
        unit="%",
        baseline=None,
        ratio=last / first,
        target=Target("value", "<=", 5.0),
        details={
            "rss_mb": [round(first / 2**20, 1), round(last / 2**20, 1)],
            "read_after_requests": [half[0], served],
            "cut_short_by_time_limit": served < goal,
            "seconds": round(time.perf_counter() - started, 1),
        },
    )
