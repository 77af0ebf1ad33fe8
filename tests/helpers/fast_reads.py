"""A read the HTTP edge answers before FastAPI must answer exactly as the app's route does."""

from __future__ import annotations

from typing import Any

import httpx


def assert_answered_alike(
    fast: httpx.Response, slow: httpx.Response, case: Any, fast_instance: str | None = None
) -> None:
    """Same status (never a 5xx), headers and body, but for the request id (and the problem's
    `instance` when the two requests had different paths: `fast_instance` is the fast one's)."""
    assert fast.status_code == slow.status_code < 500, case
    fast_headers = {k: v for k, v in fast.headers.items() if k != "x-request-id"}
    slow_headers = {k: v for k, v in slow.headers.items() if k != "x-request-id"}
    assert fast_headers == slow_headers, case
    if fast.status_code >= 400:
        fast_body, slow_body = fast.json(), slow.json()
        assert fast_body.pop("request_id") == fast.headers["x-request-id"]
        slow_body.pop("request_id")
        if fast_instance is not None:
            assert fast_body.pop("instance") == fast_instance
            slow_body.pop("instance")
        assert fast_body == slow_body
    else:
        assert fast.content == slow.content
