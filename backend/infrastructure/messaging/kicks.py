"""Relay kicks, debounced: at most one broker message per interval however many commits ask.

Every commit that wrote events asks a worker to relay the outbox now. One message per commit
cost a broker round trip (in a thread) on every order placement, and the relay drains the
whole outbox per run anyway, so one kick can stand for every commit before it was sent.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

# Long enough to fold a burst of placements into one message, short next to how long an
# event already waits for its relay and dispatch (docs/adr/0019).
KICK_INTERVAL = 0.1


class DebouncedKick:
    """`await kick()` sends now when the last send started `interval` ago or more; otherwise
    it returns at once and one trailing send, `interval` after the last, covers it.

    Every caller is covered by a send that starts after its call (so after its commit): it
    either sends itself, or schedules the trailing send, or finds one scheduled that has not
    started yet (the flag is cleared just before that send starts)."""

    def __init__(
        self,
        send: Callable[[], Awaitable[None]],
        interval: float = KICK_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._send = send
        self._interval = interval
        self._clock = clock
        self._last = float("-inf")
        self._trailing: asyncio.Task[None] | None = None

    async def __call__(self) -> None:
        if self._trailing is not None:
            return  # a send that starts after this call is already scheduled
        wait = self._last + self._interval - self._clock()
        if wait <= 0:
            self._last = self._clock()
            await self._send()
            return
        self._trailing = asyncio.create_task(self._send_after(wait), name="relay-kick")

    async def _send_after(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self._trailing = None
        self._last = self._clock()
        await self._send()

    async def aclose(self) -> None:
        """Drop a trailing send (the outbox poll covers it); for shutdown."""
        task, self._trailing = self._trailing, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
