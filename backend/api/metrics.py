"""GET /metrics: Prometheus text format, never rate limited, not in the OpenAPI document.

Served by our own route rather than the instrumentator's `expose()` so that, in multiprocess
mode, the merge of every worker's samples also carries each worker's process metrics.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from backend.bootstrap import render_metrics

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    # A sync route: reading the multiprocess files runs in the thread pool, off the loop.
    payload, content_type = render_metrics(getattr(request.app.state, "http_metrics", None))
    return Response(payload, headers={"Content-Type": content_type})
