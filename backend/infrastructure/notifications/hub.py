"""The per-process registry of open notification streams and their doorbells."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable

from backend.core.metrics import SSE_CONNECTIONS
from backend.domain.notifications import StreamWakeup, TooManyStreams


class _Doorbell:
    def __init__(self, user_id: str) -> None:
        self.user_id = user_id
        self._rung = asyncio.Event()
        self.closed = False

    def ring(self) -> None:
        self._rung.set()

    async def wait(self, timeout: float) -> bool:
        rung = self.closed or self._rung.is_set()
        if not rung:
            try:
                await asyncio.wait_for(self._rung.wait(), timeout)
                rung = True
            except TimeoutError:
                pass
        self._rung.clear()
        return rung


class NotificationHub:
    """`acquire(user_id)` registers a stream; `wake(user_ids)` rings that user's streams in
    this process. At most `max_per_user` streams per user are open here at once."""

    def __init__(self, max_per_user: int, retry_after: int = 5) -> None:
        self._max_per_user = max_per_user
        self._retry_after = retry_after
        self._streams: dict[str, set[_Doorbell]] = defaultdict(set)
        self._closed = False

    def acquire(self, user_id: str) -> _Doorbell:
        open_now = self._streams[user_id]
        if len(open_now) >= self._max_per_user:
            if not open_now:
                self._streams.pop(user_id, None)
            raise TooManyStreams(self._max_per_user, self._retry_after)
        doorbell = _Doorbell(user_id)
        doorbell.closed = self._closed
        open_now.add(doorbell)
        SSE_CONNECTIONS.inc()
        return doorbell

    def release(self, wakeup: StreamWakeup) -> None:
        assert isinstance(wakeup, _Doorbell)
        open_now = self._streams.get(wakeup.user_id)
        if open_now is None or wakeup not in open_now:
            return  # already released
        open_now.discard(wakeup)
        if not open_now:
            del self._streams[wakeup.user_id]
        SSE_CONNECTIONS.dec()

    def wake(self, user_ids: Iterable[str]) -> None:
        for user_id in set(user_ids):
            for doorbell in self._streams.get(user_id, ()):
                doorbell.ring()

    def wake_all(self) -> None:
        """After a gap in the wake-ups (a Redis reconnect): every stream looks again."""
        for doorbells in self._streams.values():
            for doorbell in doorbells:
                doorbell.ring()

    def close(self) -> None:
        """Shutdown: every stream ends after its current read."""
        self._closed = True
        for doorbells in self._streams.values():
            for doorbell in doorbells:
                doorbell.closed = True
                doorbell.ring()

    def open_streams(self, user_id: str) -> int:
        return len(self._streams.get(user_id, ()))
