"""Rate limiting through the whole app (embedded mode: the `limits` memory storage).

Redis-backed behaviour (a budget shared by several API instances, Redis down) is in
tests/integration/test_ratelimit_redis.py; the header grammar is the IETF draft's.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import APIRouter

from backend.core.config import Settings
from tests.api.test_foundation import assert_problem
from tests.support import clear_of_window_edges, make_settings

PEER = "203.0.113.7"
POLICY = re.compile(r'^"(?P<name>[a-z]+)";q=(?P<q>\d+);w=(?P<w>\d+)$')
REMAINING = re.compile(r'^"(?P<name>[a-z]+)";r=(?P<r>\d+);t=(?P<t>\d+)$')


@pytest.fixture(autouse=True)
def _clear_of_window_edges() -> None:
    clear_of_window_edges()  # exact refusal counts: never straddle a window boundary


def ping_router() -> APIRouter:
    router = APIRouter()

    @router.get("/api/v1/_test/ping")
    async def ping() -> dict[str, str]:
        return {"pong": "yes"}

    return router


@asynccontextmanager
async def app_client(settings: Settings, peer: str = PEER) -> AsyncIterator[httpx.AsyncClient]:
    """The real app plus one harmless route, seen from the TCP peer `peer`."""
    from backend.api.app import create_app

    app = create_app(settings)
    app.include_router(ping_router())
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app, client=(peer, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


def limited(tmp_path: Path, sqlite_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"rate_limit_enabled": True, **overrides}
    return make_settings(tmp_path, sqlite_url, **values)


def fields(
    response: httpx.Response,
) -> tuple[dict[str, tuple[int, int]], dict[str, tuple[int, int]]]:
    """{policy: (quota, window)} and {policy: (remaining, reset)} from the two fields."""
    policies = {}
    for item in response.headers["ratelimit-policy"].split(", "):
        match = POLICY.match(item)
        assert match, item
        policies[match["name"]] = (int(match["q"]), int(match["w"]))
    remaining = {}
    for item in response.headers["ratelimit"].split(", "):
        match = REMAINING.match(item)
        assert match, item
        remaining[match["name"]] = (int(match["r"]), int(match["t"]))
    return policies, remaining


def token_for(client: httpx.AsyncClient, user_id: str) -> dict[str, str]:
    token = client.app.state.container.tokens.issue_access(user_id).token  # type: ignore[attr-defined]
    return {"Authorization": f"Bearer {token}"}


# --------------------------------------------------------------------------- anonymous
async def test_over_the_anonymous_limit_is_a_429_problem_with_retry_after(
    tmp_path: Path, sqlite_url: str
) -> None:
    async with app_client(limited(tmp_path, sqlite_url, rate_limit_default="3/minute")) as c:
        for expected_remaining in (2, 1, 0):
            ok = await c.get("/api/v1/_test/ping")
            assert ok.status_code == 200
            policies, remaining = fields(ok)
            assert policies == {"default": (3, 60)}
            assert remaining["default"][0] == expected_remaining
            assert 0 < remaining["default"][1] <= 60

        refused = await c.get("/api/v1/_test/ping", headers={"X-Request-ID": "rl-test-1"})
        body = assert_problem(refused, 429, "quota-exceeded")
        assert body["request_id"] == "rl-test-1"
        assert body["policy"] == "default"
        assert body["title"] == "Too many requests"
        retry_after = int(refused.headers["retry-after"])
        assert 1 <= retry_after <= 60
        policies, remaining = fields(refused)
        assert policies == {"default": (3, 60)}
        assert remaining["default"] == (0, retry_after)
        # The middlewares around it still apply to a refusal.
        assert refused.headers["x-content-type-options"] == "nosniff"
        assert refused.headers["cache-control"] == "no-store"


async def test_every_response_under_a_policy_carries_the_fields(
    tmp_path: Path, sqlite_url: str
) -> None:
    async with app_client(limited(tmp_path, sqlite_url, rate_limit_default="10/minute")) as c:
        responses = [
            await c.get("/api/v1/_test/ping"),
            await c.get("/api/v1/no-such-route"),  # a 404 spends budget too (scanners)
            await c.get("/openapi.json"),
        ]
        assert [r.status_code for r in responses] == [200, 404, 200]
        assert [fields(r)[1]["default"][0] for r in responses] == [9, 8, 7]


async def test_routes_the_edge_answers_itself_are_limited_alike(
    tmp_path: Path, sqlite_url: str
) -> None:
    """GET /products/{id} without a token and GET /orders/{id} with one are answered before
    the framework (docs/adr/0019): they spend budget, carry the fields and are refused too."""
    settings = limited(tmp_path, sqlite_url, rate_limit_default="2/minute")
    async with app_client(settings) as c:
        product = f"/api/v1/products/{uuid.uuid4()}"
        first, second = await c.get(product), await c.get(product)
        assert [r.status_code for r in (first, second)] == [404, 404]
        assert [fields(r)[1]["default"][0] for r in (first, second)] == [1, 0]
        assert_problem(await c.get(product), 429, "quota-exceeded")
        user_id = str(uuid.uuid4())
        order = f"/api/v1/orders/{uuid.uuid4()}"
        answered = await c.get(order, headers=token_for(c, user_id))
        assert answered.status_code == 401  # no such user
        assert set(fields(answered)[0]) == {"authenticated"}


async def test_probes_and_metrics_are_never_limited(tmp_path: Path, sqlite_url: str) -> None:
    async with app_client(limited(tmp_path, sqlite_url, rate_limit_default="1/minute")) as c:
        for _ in range(5):
            for path in ("/api/v1/health", "/api/v1/readiness", "/metrics"):
                response = await c.get(path)
                assert response.status_code == 200, (path, response.text)
                assert "ratelimit" not in response.headers
                assert "ratelimit-policy" not in response.headers
        # ... and they spent nothing: the one request of the budget is still there.
        first = await c.get("/api/v1/_test/ping")
        assert first.status_code == 200
        assert fields(first)[1]["default"][0] == 0
        assert_problem(await c.get("/api/v1/_test/ping"), 429, "quota-exceeded")


async def test_disabled_rate_limiting_sends_no_fields(tmp_path: Path, sqlite_url: str) -> None:
    settings = make_settings(tmp_path, sqlite_url, rate_limit_default="1/minute")
    assert settings.rate_limit_enabled is False
    async with app_client(settings) as c:
        for _ in range(3):
            response = await c.get("/api/v1/_test/ping")
            assert response.status_code == 200
            assert "ratelimit" not in response.headers


# --------------------------------------------------------------------------- client address
async def test_spoofed_forwarded_for_from_an_untrusted_peer_changes_nothing(
    tmp_path: Path, sqlite_url: str
) -> None:
    settings = limited(
        tmp_path, sqlite_url, rate_limit_default="2/minute", trusted_proxies=["10.0.0.0/8"]
    )
    async with app_client(settings, peer=PEER) as c:
        statuses = [
            (
                await c.get("/api/v1/_test/ping", headers={"X-Forwarded-For": f"198.51.100.{i}"})
            ).status_code
            for i in range(4)
        ]
    assert statuses == [200, 200, 429, 429]


async def test_forwarded_for_from_a_trusted_proxy_selects_the_client(
    tmp_path: Path, sqlite_url: str
) -> None:
    settings = limited(
        tmp_path, sqlite_url, rate_limit_default="2/minute", trusted_proxies=["10.0.0.0/8"]
    )
    async with app_client(settings, peer="10.1.2.3") as c:

        async def as_client(chain: str) -> int:
            response = await c.get("/api/v1/_test/ping", headers={"X-Forwarded-For": chain})
            return response.status_code

        assert [await as_client("198.51.100.1") for _ in range(3)] == [200, 200, 429]
        # Another client behind the same proxy has its own budget.
        assert await as_client("198.51.100.2") == 200
        # A client forging the left end cannot escape: the proxy appended its real address.
        assert await as_client("1.2.3.4, 198.51.100.1") == 429
        # Hops through our own proxies are skipped: the client is the first untrusted one.
        assert await as_client("198.51.100.2, 10.9.9.9") == 200
        assert await as_client("198.51.100.2, 10.9.9.9") == 429


# --------------------------------------------------------------------------- per user
async def test_a_valid_token_has_its_own_per_user_budget(tmp_path: Path, sqlite_url: str) -> None:
    settings = limited(
        tmp_path,
        sqlite_url,
        rate_limit_default="1/minute",
        rate_limit_authenticated="3/minute",
    )
    async with app_client(settings) as c:
        alice, bob = token_for(c, str(uuid.uuid4())), token_for(c, str(uuid.uuid4()))
        for expected in (2, 1, 0):
            ok = await c.get("/api/v1/_test/ping", headers=alice)
            assert ok.status_code == 200
            policies, remaining = fields(ok)
            assert policies == {"authenticated": (3, 60)}
            assert remaining["authenticated"][0] == expected
        refused = await c.get("/api/v1/_test/ping", headers=alice)
        assert assert_problem(refused, 429, "quota-exceeded")["policy"] == "authenticated"
        # Same address, other user: untouched; anonymous from that address: untouched.
        assert (await c.get("/api/v1/_test/ping", headers=bob)).status_code == 200
        anonymous = await c.get("/api/v1/_test/ping")
        assert anonymous.status_code == 200
        assert fields(anonymous)[0] == {"default": (1, 60)}


async def test_an_invalid_token_is_limited_as_anonymous(tmp_path: Path, sqlite_url: str) -> None:
    settings = limited(
        tmp_path, sqlite_url, rate_limit_default="1/minute", rate_limit_authenticated="5/minute"
    )
    async with app_client(settings) as c:
        forged = {"Authorization": "Bearer not.a.token"}
        first = await c.get("/api/v1/_test/ping", headers=forged)
        assert first.status_code == 200
        assert fields(first)[0] == {"default": (1, 60)}
        assert_problem(await c.get("/api/v1/_test/ping", headers=forged), 429, "quota-exceeded")


# --------------------------------------------------------------------------- route policies
@pytest.mark.parametrize("path", ["/api/v1/auth/login", "/api/v1/auth/token"])
async def test_login_routes_spend_the_login_budget_per_address(
    tmp_path: Path, sqlite_url: str, path: str
) -> None:
    settings = limited(
        tmp_path, sqlite_url, rate_limit_default="100/minute", rate_limit_login="2/minute"
    )
    async with app_client(settings) as c:

        async def attempt() -> httpx.Response:
            if path.endswith("/token"):
                data = {"username": "nobody@example.com", "password": "wrong-password"}
                return await c.post(path, data=data)
            body = {"email": "nobody@example.com", "password": "wrong-password"}
            return await c.post(path, json=body)

        first = await attempt()
        assert first.status_code == 401, first.text
        policies, remaining = fields(first)
        assert policies == {"login": (2, 60), "default": (100, 60)}
        assert remaining["login"][0] == 1
        assert remaining["default"][0] == 99
        assert (await attempt()).status_code == 401
        refused = await attempt()
        body = assert_problem(refused, 429, "quota-exceeded")
        assert body["policy"] == "login"
        assert int(refused.headers["retry-after"]) >= 1
        # The general budget was not spent by the refused attempt, and other routes still work.
        ping = await c.get("/api/v1/_test/ping")
        assert ping.status_code == 200
        assert fields(ping)[1]["default"][0] == 97


async def test_login_and_token_share_one_budget_and_register_has_its_own(
    tmp_path: Path, sqlite_url: str
) -> None:
    settings = limited(
        tmp_path,
        sqlite_url,
        rate_limit_default="100/minute",
        rate_limit_login="2/minute",
        rate_limit_register="1/hour",
    )
    async with app_client(settings) as c:
        creds = {"email": "nobody@example.com", "password": "wrong-password"}
        assert (await c.post("/api/v1/auth/login", json=creds)).status_code == 401
        form = {"username": creds["email"], "password": creds["password"]}
        assert (await c.post("/api/v1/auth/token", data=form)).status_code == 401
        assert_problem(await c.post("/api/v1/auth/login", json=creds), 429, "quota-exceeded")

        account = {"email": f"new-{uuid.uuid4().hex[:8]}@example.com", "password": "long-enough-1"}
        registered = await c.post("/api/v1/auth/register", json=account)
        assert registered.status_code == 201, registered.text
        policies, remaining = fields(registered)
        assert policies == {"register": (1, 3600), "default": (100, 60)}
        assert remaining["register"][0] == 0
        again = {**account, "email": f"other-{uuid.uuid4().hex[:8]}@example.com"}
        refused = await c.post("/api/v1/auth/register", json=again)
        assert assert_problem(refused, 429, "quota-exceeded")["policy"] == "register"
        assert 1 <= int(refused.headers["retry-after"]) <= 3600


async def test_route_policies_are_per_address_even_with_a_token(
    tmp_path: Path, sqlite_url: str
) -> None:
    settings = limited(
        tmp_path, sqlite_url, rate_limit_login="1/minute", rate_limit_authenticated="50/minute"
    )
    async with app_client(settings) as c:
        creds = {"email": "nobody@example.com", "password": "wrong-password"}
        headers = token_for(c, str(uuid.uuid4()))
        first = await c.post("/api/v1/auth/login", json=creds, headers=headers)
        assert fields(first)[0] == {"login": (1, 60), "authenticated": (50, 60)}
        # A fresh token does not buy a fresh login budget.
        other = token_for(c, str(uuid.uuid4()))
        refused = await c.post("/api/v1/auth/login", json=creds, headers=other)
        assert assert_problem(refused, 429, "quota-exceeded")["policy"] == "login"


async def test_refusals_are_counted_by_policy(tmp_path: Path, sqlite_url: str) -> None:
    from prometheus_client import REGISTRY

    def refused_total() -> float:
        value = REGISTRY.get_sample_value("rate_limited_requests_total", {"policy": "default"})
        return value or 0.0

    before = refused_total()
    async with app_client(limited(tmp_path, sqlite_url, rate_limit_default="1/minute")) as c:
        statuses = [(await c.get("/api/v1/_test/ping")).status_code for _ in range(4)]
        assert statuses == [200, 429, 429, 429]
        text = (await c.get("/metrics")).text
    assert refused_total() - before == 3
    assert 'rate_limited_requests_total{policy="default"}' in text
    assert 'http_requests_total{handler="/api/v1/_test/ping",method="GET",status="4xx"}' in text
