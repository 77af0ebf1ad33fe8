"""Everything every HTTP request goes through, in one pure-ASGI layer (docs/adr/0019).

In order: the request id (kept from `X-Request-ID` when valid), the body size limit, rate
limiting, the handler (a fast route, or the app), the HTTP metrics, the security headers,
`X-Request-ID` on the response, the access log line, and the last line of defence for crashes.
One wrapper of `send` adds every response header: five middlewares, each wrapping `send` and
scanning the request headers on its own, cost more than a cached read itself.

With CORS, the CORS middleware sits between the request context (outside it: a preflight gets
a request id, security headers and an access line) and the accounting (inside it: a 429 gets
the CORS headers, a preflight is neither counted nor limited), as the separate middlewares
were ordered (docs/adr/0011).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

import structlog
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.api.errors import internal_error_response
from backend.api.middleware.http_metrics import HttpMetrics, RouteTemplates
from backend.api.middleware.ratelimit import RateLimitGate
from backend.api.middleware.request_context import (
    REQUEST_ID_HEADER,
    new_request_id,
    valid_request_id,
)
from backend.api.middleware.security import SecurityHeaders
from backend.api.problems import problem_response
from backend.core.logging import access_logger, get_logger

log = get_logger("orderflow.access")

CorsFactory = Callable[[ASGIApp], ASGIApp]


class FastRoute(Protocol):
    """A route answered here, before the app, when the request is one it can answer without
    the framework (it declines anything else, and the app's own route answers it)."""

    template: str  # the app route's path template: the `handler` label of its metrics

    def matches(self, scope: Scope) -> bool: ...

    async def answer(self, scope: Scope, receive: Receive, send: Send) -> bool:
        """True when it answered; False to let the app answer (nothing was sent)."""
        ...


class _Exchange:
    """What the layers learn about one request as it goes (one small object, no closures
    over several variables)."""

    __slots__ = ("extra_headers", "finished", "handler", "started", "status")

    def __init__(self) -> None:
        self.status = 500  # what the client gets if the app raises before answering
        self.started = False
        self.finished = False  # the whole response was sent
        self.extra_headers: list[tuple[bytes, bytes]] = []  # the rate-limit fields
        self.handler: str | None = None  # a fast route's template


class Accounting:
    """Rate limiting, the fast routes or the app, and the HTTP metrics."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: HttpMetrics,
        excluded: frozenset[str],
        gate: RateLimitGate,
        fast_routes: Sequence[FastRoute] = (),
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.excluded = excluded
        self.gate = gate
        self.fast_routes = tuple(fast_routes)
        self.templates = RouteTemplates()

    async def run(self, scope: Scope, receive: Receive, send: Send, exchange: _Exchange) -> None:
        """`send` already adds `exchange.extra_headers` and records the status."""
        started = time.perf_counter()
        try:
            refusal = await self.gate.spend(scope, exchange.extra_headers)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
            for route in self.fast_routes:
                if route.matches(scope):
                    if await route.answer(scope, receive, send):
                        exchange.handler = route.template
                        return
                    break
            await self.app(scope, receive, send)
        finally:
            handler = exchange.handler or self.templates.of(scope)
            if handler not in self.excluded:
                self.metrics.observe(
                    handler, scope["method"], exchange.status, time.perf_counter() - started
                )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The accounting as a middleware of its own (inside CORS)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        exchange = _Exchange()

        async def send_accounted(message: Message) -> None:
            if message["type"] == "http.response.start":
                exchange.status = message["status"]
                if exchange.extra_headers:
                    message["headers"] = [*message.get("headers", ()), *exchange.extra_headers]
            await send(message)

        await self.run(scope, receive, send_accounted, exchange)


class HttpEdgeMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        problem_type_base: str,
        max_body_bytes: int,
        hsts: bool,
        metrics: HttpMetrics,
        excluded: frozenset[str],
        trusted_proxies: Sequence[str] = (),
        fast_routes: Sequence[FastRoute] = (),
        cors: CorsFactory | None = None,
    ) -> None:
        self.app = app
        self.problem_type_base = problem_type_base
        self.max_body_bytes = max_body_bytes
        self.security = SecurityHeaders(hsts=hsts)
        self.accounting = Accounting(
            app,
            metrics=metrics,
            excluded=excluded,
            gate=RateLimitGate(trusted_proxies),
            fast_routes=fast_routes,
        )
        # With CORS: context here, then CORS, then the accounting as a middleware of its own.
        self.inner: ASGIApp | None = cors(self.accounting) if cors is not None else None

    @property
    def too_large_detail(self) -> str:
        return f"The request body exceeds {self.max_body_bytes} bytes."

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id: str | None = None
        declared: bytes | None = None
        for name, value in scope["headers"]:
            if name == REQUEST_ID_HEADER and request_id is None:
                request_id = valid_request_id(value)
            elif name == b"content-length":
                declared = value
        request_id = request_id or new_request_id()
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        state["problem_type_base"] = self.problem_type_base
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        exchange = _Exchange()
        security = self.security.for_path(scope["path"])
        id_header = (REQUEST_ID_HEADER, request_id.encode())

        async def send_edge(message: Message) -> None:
            if message["type"] == "http.response.start":
                exchange.started = True
                exchange.status = message["status"]
                headers = [*message.get("headers", ()), *exchange.extra_headers, *security]
                self.security.add_cache_control(headers)
                headers.append(id_header)
                message["headers"] = headers
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                exchange.finished = True
            await send(message)

        try:
            if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
                await problem_response(scope, 413, detail=self.too_large_detail)(
                    scope, receive, send_edge
                )
            else:
                counted = self._counting(receive)
                if self.inner is None:
                    await self.accounting.run(scope, counted, send_edge, exchange)
                else:
                    await self.inner(scope, counted, send_edge)
        except Exception:
            log.exception("unhandled_error", method=scope["method"], path=scope["path"])
            if exchange.finished:
                return  # the app's outermost layer answered it (`handle_unexpected_error`)
            if exchange.started:
                raise  # a response cut short: the server closes the connection
            await internal_error_response(scope)(scope, receive, send_edge)
        finally:
            access_logger().info(
                "request",
                method=scope["method"],
                path=scope["path"],
                status=exchange.status,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
                user_id=state.get("user_id"),
            )
            structlog.contextvars.clear_contextvars()

    def _counting(self, receive: Receive) -> Callable[[], Awaitable[Message]]:
        """`receive`, refusing a body that grows past the limit as it streams (one that omits
        or misstates its length): an HTTPException(413), which the app's error handler turns
        into a problem."""
        received = 0
        limit = self.max_body_bytes

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(413, detail=self.too_large_detail)
            return message

        return counting_receive
