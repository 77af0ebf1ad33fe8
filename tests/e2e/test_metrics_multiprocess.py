"""/metrics under two uvicorn worker processes (`API_WORKERS=2 python -m backend serve`).

Whichever worker answers a scrape, it must report the sum of every worker's samples, carry
each worker's process metrics, label paths by route template, and count rate-limit
refusals; with Redis, the two processes spend one shared budget.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.multiprocess import MultiProcessCollector

from tests.e2e.serving import Served, serving
from tests.support import clear_of_window_edges, service_url

pytestmark = pytest.mark.slow

HEALTH = 'http_requests_total{handler="/api/v1/health",method="GET",status="2xx"}'


def sample(text: str, series: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def per_process(served: Served, name: str, labels: dict[str, str]) -> dict[int, float]:
    """One process's own value of a counter, read from its file in the multiprocess dir."""
    values: dict[int, float] = {}
    for path in served.metrics_dir.glob("counter_*.db"):
        pid = int(path.stem.rsplit("_", 1)[1])
        for family in MultiProcessCollector.merge([str(path)], accumulate=False):
            for s in family.samples:
                if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                    values[pid] = values.get(pid, 0.0) + s.value
    return values


def fresh_connection_get(base: str, path: str) -> httpx.Response:
    # A new connection per request, so the kernel hands requests to both workers.
    with httpx.Client(base_url=base, timeout=10) as client:
        return client.get(path, headers={"Connection": "close"})


def spread(
    served: Served, path: str, served_by_both: Callable[[], bool], at_least: int = 0
) -> list[httpx.Response]:
    """Send batches of concurrent requests until both workers have answered some."""
    responses: list[httpx.Response] = []
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(50):
            batch = pool.map(lambda _: fresh_connection_get(served.base, path), range(16))
            responses.extend(batch)
            if len(responses) >= at_least and served_by_both():
                return responses
    raise AssertionError("one uvicorn worker answered every request: the test proves nothing")


def test_two_workers_report_summed_counters_process_metrics_and_templates(
    tmp_path: Path,
) -> None:
    env = {"API_WORKERS": "2", "RATE_LIMIT_ENABLED": "true", "RATE_LIMIT_DEFAULT": "3/minute"}
    with serving(tmp_path, **env) as served:
        workers = served.worker_pids()
        assert len(workers) == 2, workers

        def both_served_health() -> bool:
            counts = per_process(served, "http_requests_total", {"handler": "/api/v1/health"})
            return len([pid for pid, n in counts.items() if n > 0]) == 2

        # The readiness wait of `serving` polled /health already.
        before = sample(fresh_connection_get(served.base, "/metrics").text, HEALTH) or 0.0
        sent = spread(served, "/api/v1/health", both_served_health)
        assert all(r.status_code == 200 for r in sent)

        # Every scrape (answered by either worker) reports the sum over both.
        for _ in range(6):
            text = fresh_connection_get(served.base, "/metrics").text
            assert sample(text, HEALTH) == before + len(sent)
        per_pid = per_process(served, "http_requests_total", {"handler": "/api/v1/health"})
        assert set(per_pid) == workers
        assert sum(per_pid.values()) == before + len(sent)

        # Process metrics of each live worker, labelled by pid.
        rss_pids = set(re.findall(r'process_resident_memory_bytes\{pid="(\d+)"\}', text))
        assert {int(pid) for pid in rss_pids} == workers
        assert "process_cpu_seconds_total{" in text

        # A path with an id is labelled by its route template, never the raw path.
        template = route_with_an_id()
        raw = template.split("{", 1)[0] + str(uuid.uuid4())
        fresh_connection_get(served.base, raw)
        text = fresh_connection_get(served.base, "/metrics").text
        assert f'handler="{template}"' in text
        assert raw not in text

        # Refusals are counted once each, whichever worker refused (memory storage here:
        # each worker has its own budget in embedded mode).
        refused = 0
        for _ in range(12):
            refused += fresh_connection_get(served.base, "/api/v1/no-such-route").status_code == 429
        assert refused > 0
        text = fresh_connection_get(served.base, "/metrics").text
        assert sample(text, 'rate_limited_requests_total{policy="default"}') == refused
        assert sample(text, "rate_limit_storage_errors_total") == 0

        # Readiness results become a gauge (the "readiness failing" alert reads it).
        assert fresh_connection_get(served.base, "/api/v1/readiness").status_code == 200
        text = fresh_connection_get(served.base, "/metrics").text
        assert sample(text, 'readiness_check_ok{check="database"}') == 1
        assert sample(text, 'readiness_check_ok{check="broker"}') == 1
        assert 'readiness_check_ok{check="redis"}' not in text  # skipped: not configured

        assert_every_line_is_json(served)


def route_with_an_id() -> str:
    """A GET route whose path ends with a parameter, from the app's own OpenAPI document."""
    from backend.api.app import create_app
    from tests.support import make_settings

    app = create_app(make_settings(Path("."), "sqlite+aiosqlite:///:memory:"))
    templates = [
        path
        for path, operations in app.openapi()["paths"].items()
        if "get" in operations and path.endswith("}")
    ]
    assert templates, "no GET route with a path parameter to check"
    return sorted(templates)[0]


def assert_every_line_is_json(served: Served) -> None:
    """Production logs: every line (uvicorn's own included) is one JSON object."""
    lines = served.log_lines()
    assert lines
    logs = served.json_logs()  # raises on any line that is not JSON
    for entry in logs:
        assert {"timestamp", "level", "event"} <= set(entry), entry
    requests = [entry for entry in logs if entry["event"] == "request"]
    assert requests
    assert all(len(entry["request_id"]) == 32 for entry in requests)
    assert any("Started server process" in entry["event"] for entry in logs)


def test_two_workers_sharing_redis_spend_one_budget(tmp_path: Path) -> None:
    redis_url = service_url("TEST_REDIS_URL", "Redis server")
    prefix = f"oftest:e2e:{uuid.uuid4().hex[:8]}:"
    env = {
        "API_WORKERS": "2",
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": prefix,
        "RATE_LIMIT_ENABLED": "true",
        "RATE_LIMIT_DEFAULT": "20/hour",
    }
    try:
        with serving(tmp_path, **env) as served:
            assert len(served.worker_pids()) == 2

            def both_answered() -> bool:
                counts = per_process(served, "http_requests_total", {"method": "GET"})
                return len([pid for pid, n in counts.items() if n > 0]) == 2

            clear_of_window_edges()  # the quota is counted exactly: stay inside one window
            responses = spread(served, "/api/v1/no-such-route", both_answered, at_least=48)
            statuses = [r.status_code for r in responses]
            assert len(statuses) > 20
            assert statuses.count(404) == 20  # allowed: the quota, once, for both processes
            assert statuses.count(429) == len(statuses) - 20
            text = fresh_connection_get(served.base, "/metrics").text
            assert sample(text, 'rate_limited_requests_total{policy="default"}') == (
                len(statuses) - 20
            )
    finally:
        import asyncio

        from tests.integration.test_ratelimit_redis import delete_prefix

        asyncio.run(delete_prefix(redis_url, prefix))


async def test_a_failing_readiness_check_sets_its_gauge_to_zero(tmp_path: Path) -> None:
    from prometheus_client import REGISTRY

    from tests.api.test_ratelimit import app_client
    from tests.support import make_settings

    unreachable = "postgresql+asyncpg://postgres@127.0.0.1:1/orderflow"
    async with app_client(make_settings(tmp_path, unreachable, db_connect_timeout=1)) as c:
        assert (await c.get("/api/v1/readiness")).status_code == 503
    assert REGISTRY.get_sample_value("readiness_check_ok", {"check": "database"}) == 0
    assert REGISTRY.get_sample_value("readiness_check_ok", {"check": "broker"}) == 1
