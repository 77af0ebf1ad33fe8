"""HTTP metrics, labelled with the route template the router matched (docs/adr/0013).

The series are those prometheus-fastapi-instrumentator's default set declared, with the
same names, labels and buckets, so dashboards and alerts did not change:

- `http_requests_total{handler,method,status}`, status as a class (`2xx`),
- `http_request_duration_seconds{handler,method}`, coarse buckets,
- `http_request_duration_highr_seconds`, fine buckets and no labels (the p99 alert).

`handler` is the route template (`/api/v1/products/{product_id}`), `none` for a path no
route matches, so a scanner cannot grow the label set. The instrumentator works the template
out *before* the request by matching the path against every route of the app again, which
cost more than a whole cached product read; here the router's own match is read *after* the
request (`scope["route"]`) and each route's template is resolved once, with the
instrumentator's resolver. Requests answered before routing (a 429 from the rate limiter)
carry no route and are resolved by that resolver on the spot; a fast route of the HTTP edge
(`edge.py`) names its own template.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_fastapi_instrumentator.routing import get_route_name
from starlette.requests import HTTPConnection
from starlette.types import Scope

UNMATCHED = "none"
# The instrumentator's defaults (metrics.default), kept so that existing queries hold.
COARSE_BUCKETS = (0.1, 0.5, 1.0)
FINE_BUCKETS = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0,
    7.5, 10.0, 30.0, 60.0,
)  # fmt: skip


class HttpMetrics:
    """The three HTTP series, declared on one registry (one per app: two apps in one
    process, as in the tests, each count their own requests)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "http_requests_total",
            "Total number of requests by method, status and handler.",
            ("handler", "method", "status"),
            registry=registry,
        )
        self.duration = Histogram(
            "http_request_duration_seconds",
            "Latency with only few buckets by handler and method.",
            ("handler", "method"),
            buckets=COARSE_BUCKETS,
            registry=registry,
        )
        self.duration_highr = Histogram(
            "http_request_duration_highr_seconds",
            "Latency with many buckets but no API specific labels.",
            buckets=FINE_BUCKETS,
            registry=registry,
        )
        # Labelled children by label values: `labels()` validates and hashes on every call.
        self._counted: dict[tuple[str, str, str], Any] = {}
        self._timed: dict[tuple[str, str], Any] = {}

    def observe(self, handler: str, method: str, status: int, seconds: float) -> None:
        key = (handler, method, f"{status // 100}xx")
        counter = self._counted.get(key)
        if counter is None:
            counter = self._counted[key] = self.requests.labels(*key)
        counter.inc()
        timer = self._timed.get(key[:2])
        if timer is None:
            timer = self._timed[key[:2]] = self.duration.labels(handler, method)
        timer.observe(seconds)
        self.duration_highr.observe(seconds)


class RouteTemplates:
    """The `handler` label of a request the app routed: the template of the route the router
    matched (`scope["route"]`, read after the request), resolved once per route."""

    def __init__(self) -> None:
        self._templates: dict[int, str] = {}  # id(route) -> template; routes live as long

    def of(self, scope: Scope) -> str:
        route = scope.get("route")
        if route is None:  # answered before routing, or no route matched
            return get_route_name(HTTPConnection(scope), False) or UNMATCHED
        template = self._templates.get(id(route))
        if template is None:
            template = get_route_name(HTTPConnection(scope), False) or UNMATCHED
            self._templates[id(route)] = template
        return template
