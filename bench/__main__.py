"""`make bench`: the real API on a real server, each scenario against a baseline measured in
the same run (see README "Performance" for how to read a ratio).

    python -m bench              every scenario (BENCH_QUICK=1: shorter rounds, smaller sizes)
    python -m bench 1 3 9        only those scenarios

Needs PostgreSQL and Redis: BENCH_DATABASE_URL (a server; a throwaway database is created on
it and dropped) and BENCH_REDIS_URL (keys under a per-run prefix, deleted afterwards).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from bench import fixtures, http_scenarios, readme, results, servers, worker_scenarios
from bench.http_scenarios import Http, Plan
from bench.results import Result
from bench.wrk import Wrk, choose_cores, ensure_wrk

DEFAULT_DATABASE = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
HTTP: dict[str, Callable[[Http], Result]] = {
    "1": http_scenarios.cached_product,
    "2": http_scenarios.rate_limited_product,
    "3": http_scenarios.owner_order_read,
    "4": http_scenarios.place_order,
    "7": http_scenarios.health_during_logins,
    "8": http_scenarios.memory_growth,
    # Last: the API is still working through the queue of 256 connections after it ends.
    "9": http_scenarios.many_connections,
}
WORKER = ("6", "5")
EVERY = sorted([*HTTP, *WORKER])


def plan(quick: bool) -> tuple[Plan, worker_scenarios.Workload]:
    if quick:
        return Plan(rounds=3, seconds=2, warm_up=1, rss_requests=10_000, rss_seconds=30), (
            worker_scenarios.Workload(orders=10_000, events=1_000, window=10)
        )
    return Plan(rounds=3, seconds=4, warm_up=1, rss_requests=100_000, rss_seconds=120), (
        worker_scenarios.Workload(orders=100_000, events=5_000, window=30)
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def report(result: Result, started: float) -> None:
    verdict = {None: "", True: "  ok", False: "  NOT MET"}[result.met]
    target = f" (target {result.target})" if result.target else ""
    value = f"{result.value:,.2f} {result.unit}"
    took = f"  [{time.perf_counter() - started:.0f} s]"
    print(f"{result.name}: {value}, ratio {result.ratio:.3f}{target}{verdict}{took}")
    for key, value in result.details.items():
        print(f"    {key}: {value}")
    sys.stdout.flush()


def run_http(
    chosen: list[str], stack: servers.Stack, wrk: Wrk, timing: Plan, product_ids: list[str]
) -> list[Result]:
    pin = wrk.cores.server
    out: list[Result] = []
    with ExitStack() as using:
        api = using.enter_context(servers.api(stack, free_port(), pin, BCRYPT_ROUNDS="12"))
        limited = api
        if "2" in chosen:
            limited = using.enter_context(
                servers.api(stack, free_port(), pin, RATE_LIMIT_ENABLED="true")
            )
        customer = fixtures.Customer(api.base_url)
        using.callback(customer.close)
        order_ids = customer.place_orders(product_ids, 200)
        for server in {api.base_url, limited.base_url}:  # every product in the cache
            for product_id in product_ids:
                customer.client.get(f"{server}/api/v1/products/{product_id}").raise_for_status()
        product = customer.product_json(product_ids[0])
        baselines = using.enter_context(
            servers.baseline(
                stack, free_port(), pin, fixtures.plain_dsn(stack.database_url), product
            )
        )
        http = Http(
            wrk=wrk,
            plan=timing,
            api=api,
            limited=limited,
            baselines=baselines,
            product_ids=fixtures.write_ids(stack.scratch / "products.txt", product_ids),
            order_ids=fixtures.write_ids(stack.scratch / "orders.txt", order_ids),
            token=customer.token,
            email=customer.email,
            run_tag=uuid.uuid4().hex[:8],
        )
        for number, scenario in HTTP.items():
            if number in chosen:
                started = time.perf_counter()
                out.append(scenario(http))
                report(out[-1], started)
    return out


def run_worker(
    chosen: list[str], stack: servers.Stack, wrk: Wrk, work: worker_scenarios.Workload
) -> list[Result]:
    """A fresh worker for each, on empty queues (the API's relay kicks are not its load)."""
    out: list[Result] = []
    worker_scenarios.seed_orders(stack, work.orders)
    batches = str(work.orders // worker_scenarios.BATCH + 10)
    for number in WORKER:
        if number not in chosen:
            continue
        started = time.perf_counter()
        fixtures.delete_redis_keys(stack.redis_url, stack.key_prefix)
        port = free_port()
        broker = worker_scenarios.Broker(stack)
        try:
            with servers.worker(stack, port, wrk.cores.server, WORKFLOW_MAX_BATCHES=batches):
                if number == "6":
                    out.append(worker_scenarios.outbox_dispatch(stack, broker, port, work))
                else:
                    out.append(worker_scenarios.progression(stack, broker, work))
                report(out[-1], started)
        finally:
            broker.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("scenarios", nargs="*", choices=[[], *EVERY], help="default: all")
    chosen = parser.parse_args().scenarios or EVERY
    # Stopped early (Ctrl-C, or SIGTERM; a background job ignores SIGINT): the servers are
    # stopped, the database dropped and the Redis keys deleted on the way out.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("make bench: stopped"))
    begun = time.perf_counter()
    quick = os.environ.get("BENCH_QUICK", "") not in ("", "0")
    timing, work = plan(quick)
    wrk = Wrk(ensure_wrk(), choose_cores())
    if wrk.cores.pinned:  # this process and wrk on the load core, the servers on theirs
        os.sched_setaffinity(0, {int(wrk.cores.load[-1])})
    cores = wrk.cores
    where = (
        f"servers on {cores.server[-1]}, load on {cores.load[-1]}" if cores.pinned else "not pinned"
    )
    print(f"cores: {where}")
    server_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE)
    redis_url = os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS)
    prefix = (
        os.environ.get("BENCH_REDIS_KEY_PREFIX", "orderflow-bench") + f"-{uuid.uuid4().hex[:8]}:"
    )
    out: list[Result] = []
    with tempfile.TemporaryDirectory() as scratch, fixtures.throwaway_database(server_url) as db:
        stack = servers.Stack(db, redis_url, prefix, Path(scratch))
        try:
            product_ids = asyncio.run(fixtures.seed_products(db))
            if any(n in chosen for n in HTTP):
                out += run_http(chosen, stack, wrk, timing, product_ids)
            if any(n in chosen for n in WORKER):
                out += run_worker(chosen, stack, wrk, work)
        finally:
            fixtures.delete_redis_keys(redis_url, prefix)
    out.sort(key=lambda r: r.name)
    print()
    print(results.table(out))
    mode = "quick" if quick else "full" if chosen == EVERY else "partial"
    latest = results.write(out, mode=mode)
    if mode == "full":
        readme.update(out, latest)
    print(f"\nwritten: {latest} and history.csv" + (", README" if mode == "full" else ""))
    print(f"make bench took {time.perf_counter() - begun:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
