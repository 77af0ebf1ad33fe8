"""Rate limiting on real Redis: one budget for every API instance, and Redis failures.

Outages use a redis-server of the test's own (on a free port), never the shared one.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from backend.core.config import Settings
from backend.infrastructure.ratelimit import RateLimiter
from backend.infrastructure.ratelimit.limiter import build_policies, build_storage
from tests.api.test_ratelimit import app_client, fields, limited
from tests.helpers.redis_server import RedisServer, free_port
from tests.support import clear_of_window_edges, make_settings

pytestmark = pytest.mark.redis


@pytest.fixture(autouse=True)
def _clear_of_window_edges() -> None:
    clear_of_window_edges()  # exact refusal counts: never straddle a window boundary


def storage_errors() -> float:
    return REGISTRY.get_sample_value("rate_limit_storage_errors_total") or 0.0


class Captured:
    """Stands in for the limiter module's structlog logger: records each call's event and
    fields (independent of how logging happens to be configured in this process)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def _record(self, level: str) -> Any:
        def record(event: str, **fields: Any) -> None:
            self.events.append({"event": event, "level": level, **fields})

        return record

    def __getattr__(self, level: str) -> Any:
        return self._record(level)

    def named(self, event: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("event") == event]


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> Captured:
    from backend.infrastructure.ratelimit import limiter

    recorder = Captured()
    monkeypatch.setattr(limiter, "log", recorder)
    return recorder


async def delete_prefix(redis_url: str, prefix: str) -> None:
    client = Redis.from_url(redis_url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


# --------------------------------------------------------------------------- one shared budget
async def test_two_api_instances_sharing_redis_share_one_budget(
    tmp_path: Path, sqlite_url: str, redis_url: str
) -> None:
    prefix = f"oftest:rl:{uuid.uuid4().hex[:8]}:"
    settings = limited(
        tmp_path,
        sqlite_url,
        redis_url=redis_url,
        redis_key_prefix=prefix,
        rate_limit_default="10/hour",
    )
    try:
        async with app_client(settings) as first, app_client(settings) as second:
            assert first.app.state.container is not second.app.state.container  # type: ignore[attr-defined]
            assert first.app.state.container.rate_limiter.backend == "redis"  # type: ignore[attr-defined]
            calls = [c.get("/api/v1/_test/ping") for _ in range(15) for c in (first, second)]
            responses = await asyncio.gather(*calls)
        statuses = [r.status_code for r in responses]
        assert statuses.count(200) == 10
        assert statuses.count(429) == 20
        # `remaining` is read after the hit (a second round trip), so under concurrency it may
        # already count other requests' hits: it can only err on the low side.
        for response in responses:
            remaining, reset = fields(response)[1]["default"]
            assert 0 <= remaining <= 9
            assert 0 < reset <= 3600
        client = Redis.from_url(redis_url)
        try:
            assert [key async for key in client.scan_iter(match=f"{prefix}ratelimit:*")]
        finally:
            await client.aclose()
    finally:
        await delete_prefix(redis_url, prefix)


async def test_concurrent_hits_on_one_key_allow_exactly_the_quota(
    tmp_path: Path, sqlite_url: str, redis_url: str
) -> None:
    prefix = f"oftest:rl:{uuid.uuid4().hex[:8]}:"
    settings = make_settings(
        tmp_path, sqlite_url, redis_key_prefix=prefix, rate_limit_default="25/hour"
    )
    clients = [Redis.from_url(redis_url) for _ in range(4)]  # four "processes", four pools
    limiters = [RateLimiter(build_storage(settings, c), build_policies(settings)) for c in clients]
    try:
        decisions = await asyncio.gather(
            *(limiters[i % 4].hit("default", "ip:198.51.100.1") for i in range(100))
        )
        assert all(d is not None for d in decisions)
        assert sum(1 for d in decisions if d and d.allowed) == 25
        assert all(d.remaining == 0 for d in decisions if d and not d.allowed)
    finally:
        for client in clients:
            await client.aclose()
        await delete_prefix(redis_url, prefix)


# --------------------------------------------------------------------------- Redis down
async def test_redis_down_lets_requests_through_counts_and_recovers(
    tmp_path: Path, sqlite_url: str, own_redis_without_persistence: RedisServer, captured: Captured
) -> None:
    settings = limited(
        tmp_path,
        sqlite_url,
        redis_url=own_redis_without_persistence.url,
        rate_limit_default="2/minute",
        rate_limit_storage_retry_seconds=0,  # ask Redis on every request: deterministic counts
        log_level="INFO",
    )
    async with app_client(settings) as c:
        statuses = [(await c.get("/api/v1/_test/ping")).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]

        own_redis_without_persistence.stop()
        before = storage_errors()
        for _ in range(6):
            response = await c.get("/api/v1/_test/ping")
            assert response.status_code == 200, response.text
            assert response.headers["ratelimit-policy"] == '"default";q=2;w=60'
            assert "ratelimit" not in response.headers  # the budget is unknown: not invented
        assert storage_errors() - before == 6
        # Logged once for the whole outage, not once per request.
        assert len(captured.named("rate_limit_storage_unavailable")) == 1

        # Empty (no persistence): a fresh budget once Redis answers again.
        own_redis_without_persistence.start()
        for _ in range(20):
            response = await c.get("/api/v1/_test/ping")
            if "ratelimit" in response.headers:
                break
        assert response.status_code == 200
        assert fields(response)[1]["default"][0] == 1
        assert len(captured.named("rate_limit_storage_recovered")) == 1
        assert (await c.get("/api/v1/_test/ping")).status_code == 200
        assert (await c.get("/api/v1/_test/ping")).status_code == 429


async def test_after_a_failure_redis_is_not_asked_again_until_the_retry_time(
    tmp_path: Path, sqlite_url: str
) -> None:
    """A black-holed Redis would cost a socket timeout per request: after a failure the
    limiter lets requests through without asking for `retry_after_failure` seconds."""
    now = [1000.0]
    dead = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=1)
    settings = make_settings(tmp_path, sqlite_url, rate_limit_default="5/minute")
    limiter = RateLimiter(
        build_storage(settings, dead),
        build_policies(settings),
        retry_after_failure=5,
        log_interval=60,
        timer=lambda: now[0],
    )
    asked: list[int] = []
    original = limiter._strategy.hit

    async def counting_hit(*args: Any, **kwargs: Any) -> bool:
        asked.append(1)
        return await original(*args, **kwargs)

    limiter._strategy.hit = counting_hit  # type: ignore[method-assign]
    before = storage_errors()
    try:
        for _ in range(4):  # one real attempt, then three bypasses
            assert await limiter.hit("default", "ip:198.51.100.1") is None
        assert len(asked) == 1
        now[0] += 5  # retry time reached: Redis is asked again (and fails again)
        assert await limiter.hit("default", "ip:198.51.100.1") is None
        assert len(asked) == 2
        assert storage_errors() - before == 5  # every request let through is counted
    finally:
        await dead.aclose()


async def test_storage_failures_are_logged_once_per_interval(
    tmp_path: Path, sqlite_url: str, captured: Captured
) -> None:
    now = [0.0]
    dead = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=1)
    settings: Settings = make_settings(tmp_path, sqlite_url)
    limiter = RateLimiter(
        build_storage(settings, dead),
        build_policies(settings),
        retry_after_failure=0,
        log_interval=60,
        timer=lambda: now[0],
    )
    try:
        for second in range(10):
            now[0] = float(second)
            assert await limiter.hit("default", "ip:198.51.100.1") is None
        logged = captured.named("rate_limit_storage_unavailable")
        assert len(logged) == 1
        assert logged[0]["requests_let_through"] == 1
        assert "Connect" in logged[0]["error"] or "connect" in logged[0]["error"]

        now[0] = 61.0
        assert await limiter.hit("default", "ip:198.51.100.1") is None
        logged = captured.named("rate_limit_storage_unavailable")
        assert len(logged) == 2
        assert logged[1]["requests_let_through"] == 10  # the nine quiet ones and this one
    finally:
        await dead.aclose()


async def test_memory_storage_in_embedded_mode(tmp_path: Path, sqlite_url: str) -> None:
    settings = limited(tmp_path, sqlite_url, rate_limit_default="1/minute")
    async with app_client(settings) as c:
        assert c.app.state.container.rate_limiter.backend == "memory"  # type: ignore[attr-defined]
        assert [(await c.get("/api/v1/_test/ping")).status_code for _ in range(2)] == [200, 429]


def test_settings_refuse_bad_rate_limits_and_proxies(tmp_path: Path, sqlite_url: str) -> None:
    with pytest.raises(ValueError, match="is not a rate limit"):
        make_settings(tmp_path, sqlite_url, rate_limit_login="five per minute please")
    with pytest.raises(ValueError, match="is not an IP address or CIDR"):
        make_settings(tmp_path, sqlite_url, trusted_proxies=["10.0.0.0/8", "proxy.internal"])


def test_trusted_proxies_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.10")
    assert Settings(_env_file=None).trusted_proxies == ["10.0.0.0/8", "192.168.1.10"]  # type: ignore[call-arg]
    monkeypatch.setenv("TRUSTED_PROXIES", '["fd00::/8"]')
    assert Settings(_env_file=None).trusted_proxies == ["fd00::/8"]  # type: ignore[call-arg]


async def test_anonymous_clients_are_keyed_by_address_in_redis(
    tmp_path: Path, sqlite_url: str, redis_url: str
) -> None:
    prefix = f"oftest:rl:{uuid.uuid4().hex[:8]}:"
    settings = limited(
        tmp_path,
        sqlite_url,
        redis_url=redis_url,
        redis_key_prefix=prefix,
        rate_limit_default="1/hour",
    )
    try:
        async with (
            app_client(settings, peer="198.51.100.20") as a,
            app_client(settings, peer="198.51.100.21") as b,
        ):
            assert (await a.get("/api/v1/_test/ping")).status_code == 200
            assert (await b.get("/api/v1/_test/ping")).status_code == 200
            assert (await a.get("/api/v1/_test/ping")).status_code == 429
            ok: httpx.Response = await b.get("/api/v1/_test/ping")
            assert ok.status_code == 429
    finally:
        await delete_prefix(redis_url, prefix)
