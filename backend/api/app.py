"""The FastAPI application factory (`uvicorn --factory backend.api.app:create_app`)."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from prometheus_client import CollectorRegistry
from starlette.types import ASGIApp, Receive, Scope, Send

from backend import __version__
from backend.api.console import install_console
from backend.api.errors import install_error_handlers
from backend.api.metrics import router as metrics_router
from backend.api.middleware.edge import CorsFactory, HttpEdgeMiddleware
from backend.api.middleware.http_metrics import HttpMetrics
from backend.api.openapi import install_openapi
from backend.api.v1.orders import OwnOrderRead
from backend.api.v1.products import CachedProductRead
from backend.api.v1.router import routers as v1_routers
from backend.bootstrap import build_container
from backend.core.config import Settings, get_settings
from backend.core.logging import configure_logging, get_logger

API_PREFIX = "/api/v1"
log = get_logger(__name__)


class OrderflowApp(FastAPI):
    """FastAPI with the HTTP edge in front of its whole stack (docs/adr/0019).

    Every HTTP request meets the edge first: the reads the edge answers itself skip FastAPI's
    own layers too (its telemetry check, error and body-limit middlewares), and every other
    request reaches them through `framework`. Lifespan and other scopes go straight to FastAPI.
    """

    edge: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.edge is not None:
            scope["app"] = self  # the edge finds the container through it
            await self.edge(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)

    async def framework(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The app behind the edge: FastAPI with its middleware stack and routes."""
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.effective_log_format)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        container = await build_container(settings)
        app.state.container = container
        await container.start_identity()
        # Drops this process's L1 entries when any process writes (returns at once embedded).
        container.spawn(container.cache.listen(), name="cache-invalidation")
        container.start_wakeups()  # rings this process's notification streams
        container.spawn(
            container.watch_outbox_backlog(),
            name="outbox-backlog-gauges",
            returns_when_stopping=True,
        )
        # What start-up built lives as long as the process: the garbage collector need not
        # walk it again. Under load every full collection did (110-120 ms, about once a
        # second at 256 connections), a pause for every request in flight (docs/adr/0019).
        gc.collect()
        gc.freeze()
        log.info(
            "api_started", environment=settings.environment, database=container.engine.dialect.name
        )
        try:
            yield
        finally:
            gc.unfreeze()  # a process that builds another app (tests) can collect this one
            await container.aclose()
            log.info("api_stopped")

    docs = not settings.is_production
    app = OrderflowApp(
        title="Orderflow",
        version=__version__,
        description="Order management: catalogue, atomic stock reservation, an order workflow.",
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
    )
    install_error_handlers(app)
    install_openapi(app)
    for router in v1_routers:
        app.include_router(router, prefix=API_PREFIX)
    app.include_router(metrics_router)
    install_console(app)
    # The HTTP metrics belong to this app (a second app in one process, as in the tests,
    # would otherwise find them registered globally and record nothing); /metrics adds them.
    app.state.http_metrics = CollectorRegistry(auto_describe=True)
    cors: CorsFactory | None = None
    if settings.cors_origins:
        cors = partial(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=True,
            allow_methods=["GET", "POST", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "If-Match",
                "If-None-Match",
                "Idempotency-Key",
                "Last-Event-ID",
                "X-Request-ID",
            ],
            expose_headers=[
                "ETag",
                "Location",
                "X-Request-ID",
                "RateLimit",
                "RateLimit-Policy",
                "Retry-After",
            ],
        )
    # One layer in front of every request: request id, body limit, rate limiting (its 429s are
    # counted, and get the CORS, security and request-id headers: ADR 0011), metrics,
    # security headers, the access line (docs/adr/0019).
    app.edge = HttpEdgeMiddleware(
        app.framework,
        problem_type_base=settings.problem_type_base,
        max_body_bytes=settings.max_body_bytes,
        hsts=settings.is_production,
        metrics=HttpMetrics(app.state.http_metrics),
        # A stream lasts minutes: its "latency" would swamp the request-time histograms.
        excluded=frozenset({"/metrics", f"{API_PREFIX}/notifications/stream"}),
        trusted_proxies=settings.trusted_proxies,
        fast_routes=[CachedProductRead(API_PREFIX), OwnOrderRead(API_PREFIX)],
        cors=cors,
    )
    return app
