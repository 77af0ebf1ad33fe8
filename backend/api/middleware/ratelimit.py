"""Rate limiting for every route except the probes and /metrics (docs/adr/0011).

Budgets: per user (`authenticated`) when a valid access token is sent, per client address
(`default`) otherwise; login/token and register also spend a stricter per-address budget.
Every response under a policy carries the IETF draft's `RateLimit-Policy` and `RateLimit`
fields; a refusal is a 429 `quota-exceeded` problem with `Retry-After`.

Part of the HTTP edge (`edge.py`): a 429 has a request id, the security headers, the CORS
headers, and is counted by the HTTP metrics. The limiter comes from the container at request
time (it is built in the lifespan).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import structlog
from starlette.types import ASGIApp, Scope

from backend.api.middleware.client_ip import ClientAddressResolver, limit_key
from backend.api.problems import problem_response
from backend.bootstrap import Container
from backend.core.logging import get_logger
from backend.domain.errors import DomainError, RateLimited

log = get_logger(__name__)

EXEMPT_PATHS = frozenset({"/api/v1/health", "/api/v1/readiness", "/metrics", "/"})
# The console's static files (docs/adr/0018): a page load fetches a dozen of them, which
# would spend an anonymous visitor's budget before the first API call.
EXEMPT_PREFIXES = ("/console/",)
# (method, path) -> the stricter per-address policy spent on top of the general one.
ROUTE_POLICIES = {
    ("POST", "/api/v1/auth/login"): "login",
    ("POST", "/api/v1/auth/token"): "login",
    ("POST", "/api/v1/auth/register"): "register",
}


# What the middleware reads of the limiter's policies and decisions (the API does not import
# the adapter's classes: backend/infrastructure/ratelimit).
class Policy(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def quota(self) -> int: ...
    @property
    def window_seconds(self) -> int: ...


class Decision(Protocol):
    @property
    def policy(self) -> Policy: ...
    @property
    def allowed(self) -> bool: ...
    @property
    def remaining(self) -> int: ...
    @property
    def reset_after(self) -> int: ...


def policy_field(policies: Iterable[Policy]) -> bytes:
    return ", ".join(f'"{p.name}";q={p.quota};w={p.window_seconds}' for p in policies).encode()


def remaining_field(decisions: Iterable[Decision]) -> bytes:
    return ", ".join(
        f'"{d.policy.name}";r={d.remaining};t={d.reset_after}' for d in decisions
    ).encode()


def rate_limit_headers(
    policies: Sequence[Policy], decisions: Sequence[Decision]
) -> list[tuple[bytes, bytes]]:
    headers = [(b"ratelimit-policy", policy_field(policies))] if policies else []
    if decisions:  # none when the storage failed: the budget is unknown
        headers.append((b"ratelimit", remaining_field(decisions)))
    return headers


def bearer_token(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, token = str(value.decode("latin-1")).partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


def exempt(path: str) -> bool:
    return path in EXEMPT_PATHS or path.startswith(EXEMPT_PREFIXES)


class RateLimitGate:
    """Spends the request's budgets before the route runs (part of the HTTP edge)."""

    def __init__(self, trusted_proxies: Iterable[str] = ()) -> None:
        self.resolver = ClientAddressResolver(trusted_proxies)

    async def spend(self, scope: Scope, headers: list[tuple[bytes, bytes]]) -> ASGIApp | None:
        """Adds the rate-limit fields to `headers` (they go on the response) and returns the
        429 response when a budget is spent, else None (also when limiting is off)."""
        container = self._container(scope)
        limiter = container.rate_limiter if container is not None else None
        if limiter is None or exempt(scope["path"]):
            return None
        policies, decisions = await self._spend(scope, container)
        headers.extend(rate_limit_headers(policies, decisions))
        denied = [decision for decision in decisions if not decision.allowed]
        if denied:
            return self._refuse(scope, denied)
        return None

    @staticmethod
    def _container(scope: Scope) -> Any:
        state = getattr(scope.get("app"), "state", None)
        return getattr(state, "container", None)

    async def _spend(
        self, scope: Scope, container: Container
    ) -> tuple[list[Policy], list[Decision]]:
        """Spend the route's budget first (stricter), then the general one; stop at a refusal."""
        limiter = container.rate_limiter
        assert limiter is not None
        address = self.resolver.resolve(scope)
        scope.setdefault("state", {})["client_ip"] = address
        route_policy = ROUTE_POLICIES.get((scope["method"], scope["path"].rstrip("/")))
        user_id = self._user_id(scope, container)
        spends = [(route_policy, limit_key(address))] if route_policy else []
        if user_id is not None:
            spends.append(("authenticated", f"user:{user_id}"))
        else:
            spends.append(("default", limit_key(address)))
        policies: list[Policy] = []
        decisions: list[Decision] = []
        for name, key in spends:
            policies.append(limiter.policies[name])
            decision = await limiter.hit(name, key)
            if decision is not None:
                decisions.append(decision)
                if not decision.allowed:
                    break
        return policies, decisions

    @staticmethod
    def _user_id(scope: Scope, container: Container) -> str | None:
        token = bearer_token(scope)
        if token is None:
            return None
        try:
            user_id = container.tokens.decode_access(token).sub
        except DomainError:
            return None  # an invalid token is anonymous here; the route answers 401
        # Known from here on: the access log line and every log line of this request carry it.
        scope.setdefault("state", {}).setdefault("user_id", user_id)
        structlog.contextvars.bind_contextvars(user_id=user_id)
        return user_id

    @staticmethod
    def _refuse(scope: Scope, denied: Sequence[Decision]) -> ASGIApp:
        retry_after = max(decision.reset_after for decision in denied)
        names = ", ".join(decision.policy.name for decision in denied)
        log.info("rate_limited", policy=names, retry_after=retry_after)
        response = problem_response(
            scope,
            429,
            slug=RateLimited.slug,
            title=RateLimited.title,
            detail=f"Too many requests under the {names!r} policy; retry in {retry_after} s.",
            headers={"Retry-After": str(retry_after)},
            policy=denied[0].policy.name,
        )
        return response
