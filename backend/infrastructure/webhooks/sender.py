"""POST a signed webhook with httpx: bounded in time, never redirected, always a result."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from backend.domain.webhooks import RESPONSE_EXCERPT_BYTES, SendResult, UnsafeTarget, excerpt
from backend.infrastructure.webhooks.targets import AddressGuard
from backend.infrastructure.webhooks.transport import PinnedAddressTransport

USER_AGENT = "Orderflow-Webhooks/1"
RETRY_AFTER_STATUSES = {429, 503}


class HttpxWebhookSender:
    """One client (connection pool) per process; each request is bounded by `connect_timeout`
    to connect and `total_timeout` for everything (httpx's timeouts are per phase: a receiver
    trickling a byte every few seconds would otherwise hold a delivery indefinitely)."""

    def __init__(
        self,
        guard: AddressGuard,
        *,
        connect_timeout: float = 5.0,
        total_timeout: float = 15.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._total_timeout = total_timeout
        self._client = httpx.AsyncClient(
            transport=transport or PinnedAddressTransport(guard),
            timeout=httpx.Timeout(total_timeout, connect=connect_timeout),
            follow_redirects=False,
            trust_env=False,
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
        )

    async def send(self, url: str, body: str, headers: dict[str, str]) -> SendResult:
        started = time.perf_counter()
        request_headers = {
            **headers,
            "content-type": "application/json",
            "user-agent": USER_AGENT,
        }
        try:
            async with asyncio.timeout(self._total_timeout):
                async with self._client.stream(
                    "POST", url, content=body.encode("utf-8"), headers=request_headers
                ) as response:
                    raw = await _first_bytes(response)
        except UnsafeTarget as error:
            return _failure(started, f"target refused: {error.detail}")
        except (TimeoutError, httpx.TimeoutException):
            return _failure(started, f"timed out after {self._total_timeout:g} s or less")
        except httpx.HTTPError as error:
            return _failure(started, f"{type(error).__name__}: {error}".rstrip(": "))
        status = response.status_code
        return SendResult(
            response_status=status,
            latency_ms=_elapsed_ms(started),
            error=_status_error(status),
            response_excerpt=excerpt(raw),
            retry_after=_retry_after(response) if status in RETRY_AFTER_STATUSES else None,
        )

    async def aclose(self) -> None:
        await self._client.aclose()


async def _first_bytes(response: httpx.Response) -> bytes:
    """Up to the first KB of the body; the rest is never read (the receiver owes us none)."""
    chunks = bytearray()
    async for chunk in response.aiter_bytes():
        chunks += chunk
        if len(chunks) >= RESPONSE_EXCERPT_BYTES:
            break
    return bytes(chunks[:RESPONSE_EXCERPT_BYTES])


def _status_error(status: int) -> str | None:
    if 200 <= status < 300:
        return None
    if 300 <= status < 400:
        return f"HTTP {status}: redirects are not followed"
    return f"HTTP {status}"


def _retry_after(response: httpx.Response) -> float | None:
    """`Retry-After` as seconds (delta-seconds or an HTTP date), None if absent or unreadable."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _failure(started: float, error: str) -> SendResult:
    return SendResult(response_status=None, latency_ms=_elapsed_ms(started), error=error)


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
