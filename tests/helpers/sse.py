"""A small Server-Sent Events client over httpx streaming, for tests against real servers
(httpx's ASGI transport does not stream)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx


@dataclass(frozen=True)
class SseEvent:
    event: str | None
    id: str | None
    data: str
    received_at: datetime

    def json(self) -> Any:
        return json.loads(self.data)


@dataclass
class SseStream:
    response: httpx.Response
    events: asyncio.Queue[SseEvent | None] = field(default_factory=asyncio.Queue)
    comments: list[str] = field(default_factory=list)
    connected: asyncio.Event = field(default_factory=asyncio.Event)

    async def next_event(self, timeout: float) -> SseEvent:
        event = await asyncio.wait_for(self.events.get(), timeout)
        if event is None:
            raise EOFError("the stream ended")
        return event

    async def ended(self, timeout: float) -> bool:
        """True when the server closes the stream within `timeout` (events are drained)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            left = deadline - asyncio.get_running_loop().time()
            try:
                if await asyncio.wait_for(self.events.get(), max(left, 0.01)) is None:
                    return True
            except TimeoutError:
                return False

    async def read(self) -> None:
        fields: dict[str, str] = {}
        data: list[str] = []
        try:
            async for line in self.response.aiter_lines():
                if line.startswith(":"):
                    self.comments.append(line[1:].strip())
                    self.connected.set()
                elif line == "":
                    if data:
                        await self.events.put(
                            SseEvent(
                                fields.get("event"),
                                fields.get("id"),
                                "\n".join(data),
                                datetime.now(UTC),
                            )
                        )
                    fields, data = {}, []
                else:
                    name, _, value = line.partition(":")
                    value = value.removeprefix(" ")
                    if name == "data":
                        data.append(value)
                    else:
                        fields[name] = value
        except httpx.HTTPError:
            pass
        finally:
            await self.events.put(None)


@asynccontextmanager
async def open_stream(
    base: str, *, headers: dict[str, str] | None = None, params: dict[str, str] | None = None
) -> AsyncIterator[SseStream]:
    """GET /api/v1/notifications/stream; yields once the server's first comment arrived."""
    timeout = httpx.Timeout(10.0, read=None)
    async with (
        httpx.AsyncClient(base_url=base, timeout=timeout) as client,
        client.stream(
            "GET", "/api/v1/notifications/stream", headers=headers or {}, params=params
        ) as response,
    ):
        assert response.status_code == 200, (await response.aread()).decode()
        assert response.headers["content-type"].startswith("text/event-stream")
        stream = SseStream(response)
        reader = asyncio.create_task(stream.read())
        try:
            await asyncio.wait_for(stream.connected.wait(), 10)
            yield stream
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
