"""The tiered cache: L1 `TTLCache` per process in front of L2 Redis, cache-aside.

- A miss is loaded once per key however many readers wait for it (single-flight).
- `invalidate` drops the local entry, deletes the L2 key and publishes the keys on a
  channel every process listens to (`listener.py`), which drops its own L1 entry.
- `invalidate_namespace` bumps the namespace version that is part of every L2 key of
  the namespace (so old entries become unreachable at once) and clears L1 everywhere.
- Redis trouble never fails a read or a write: L2 is skipped, the failed invalidations
  are kept and replayed when Redis answers again, and the listener flushes L1 when it
  reconnects (it may have missed messages).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from cachetools import TTLCache
from redis.asyncio import Redis

from backend.core.logging import get_logger
from backend.core.metrics import CACHE_REQUESTS
from backend.infrastructure.cache.codecs import Codec
from backend.infrastructure.cache.redis_tier import FAILED, RedisTier

log = get_logger(__name__)
T = TypeVar("T")
Policy = Callable[[str], tuple[float, int]]
LEASE_MS = 5_000
MAX_PENDING_KEYS = 10_000
_MISSING: Any = object()


@dataclass(eq=False)
class _Flight:
    """One load in progress. `stale` is set when an invalidation overtakes it."""

    task: asyncio.Task[Any] | None = None
    stale: bool = False


@dataclass(eq=False)
class _Batch:
    """Invalidations that go to Redis together, and the future their writers await."""

    done: asyncio.Future[None]
    keys: dict[str, set[str]] = field(default_factory=dict)
    namespaces: set[str] = field(default_factory=set)


@dataclass
class _Pending:
    """Invalidations Redis did not take; replayed at the next chance."""

    keys: dict[str, set[str]] = field(default_factory=dict)
    namespaces: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.keys or self.namespaces)


class TieredCache:
    def __init__(
        self,
        *,
        policy: Policy,
        codecs: Mapping[str, Codec],
        l2: RedisTier | None = None,
        subscriber: Callable[[], Redis] | None = None,
        prefix: str = "orderflow:",
        enabled: bool = True,
    ) -> None:
        self._policy = policy
        self._codecs = codecs
        self.l2 = l2
        self._subscriber = subscriber
        self.enabled = enabled
        self._prefix = f"{prefix}cache:"
        self.channel = f"{self._prefix}invalidate"
        self.origin = uuid.uuid4().hex  # lets the listener skip this process's own messages
        self._l1: dict[str, TTLCache[str, Any]] = {}
        self._versions: dict[str, str] = {}
        self._flights: dict[tuple[str, str], _Flight] = {}
        self._pending = _Pending()
        self._next: _Batch | None = None  # collecting while the one before is being sent
        self._sender: asyncio.Task[None] | None = None
        self.subscribed = asyncio.Event()
        self._counters: dict[tuple[str, str, str], Any] = {}

    # ------------------------------------------------------------------ reads
    async def get_or_load(
        self, namespace: str, key: str, load: Callable[[], Awaitable[T | None]]
    ) -> T | None:
        if not self.enabled:
            return await load()
        l1 = self._l1.get(namespace)
        value = _MISSING if l1 is None else l1.get(key, _MISSING)
        if value is not _MISSING:
            self._count(namespace, "l1", "hit")
            return value  # type: ignore[no-any-return]
        self._count(namespace, "l1", "miss")
        flight = self._flights.get((namespace, key))
        if flight is None:
            flight = self._start(namespace, key, load)
        assert flight.task is not None
        # Shielded: a reader that gives up (client gone) does not cancel the others' load.
        return await asyncio.shield(flight.task)

    def _start(self, namespace: str, key: str, load: Callable[[], Awaitable[Any]]) -> _Flight:
        flight = _Flight()
        flight.task = asyncio.create_task(self._fill(namespace, key, load, flight))
        self._flights[(namespace, key)] = flight
        flight.task.add_done_callback(lambda task: self._landed(namespace, key, flight, task))
        return flight

    def _landed(self, namespace: str, key: str, flight: _Flight, task: asyncio.Task[Any]) -> None:
        if self._flights.get((namespace, key)) is flight:
            del self._flights[(namespace, key)]
        if not task.cancelled():
            task.exception()  # retrieved here too, in case every reader has gone

    async def _fill(
        self, namespace: str, key: str, load: Callable[[], Awaitable[Any]], flight: _Flight
    ) -> Any:
        version = await self._version(namespace)
        value, lease = await self._from_l2(namespace, key, version)
        if value is None:
            value = await load()
            if value is not None and lease is not None and not flight.stale:
                await self._store_l2(namespace, key, version, value, lease)
        if value is not None and not flight.stale and self._versions.get(namespace) == version:
            l1 = self._l1.get(namespace)
            (self._new_l1(namespace) if l1 is None else l1)[key] = value
        return value

    async def _from_l2(self, namespace: str, key: str, version: str) -> tuple[Any, str | None]:
        """(value or None, lease token to fill with, or None when L2 is out of play)."""
        codec = self._codecs.get(namespace)
        if self.l2 is None or codec is None or not self.l2.available:
            return None, None
        token = uuid.uuid4().hex
        l2_key = self._l2_key(namespace, version, key)
        raw = await self.l2.get_or_lease(l2_key, f"{l2_key}:lease", token, LEASE_MS)
        if raw is FAILED:
            self._count(namespace, "l2", "error")
            return None, None
        value = codec.decode(raw) if isinstance(raw, bytes) else None
        self._count(namespace, "l2", "hit" if value is not None else "miss")
        if value is None and raw is not None:
            # An entry of another schema (another deploy): lease it so this load replaces it.
            await self.l2.lease(f"{l2_key}:lease", token, LEASE_MS)
        return value, token

    async def _store_l2(
        self, namespace: str, key: str, version: str, value: Any, lease: str
    ) -> None:
        assert self.l2 is not None
        l2_key = self._l2_key(namespace, version, key)
        ttl, _ = self._policy(namespace)
        raw = self._codecs[namespace].encode(value)
        await self.l2.fill(l2_key, f"{l2_key}:lease", lease, raw, max(1, int(ttl * 1000)))

    async def _version(self, namespace: str) -> str:
        """The namespace version in L2 keys; read from Redis the first time (then kept
        current by bumps and the listener)."""
        version = self._versions.get(namespace)
        if version is not None:
            return version
        if self.l2 is not None and self.l2.available:
            versions = await self.l2.read_versions([self._version_key(namespace)])
            if versions is not None:
                return self._versions.setdefault(namespace, versions[0])
        return self._versions.setdefault(namespace, "0")

    # ------------------------------------------------------------------ invalidation
    # Writers' invalidations reach Redis in batches (docs/adr/0019): one batch is sent at a
    # time, and what writers ask for meanwhile joins the next one, so N writes committed
    # together cost two Redis round trips (the keys' DEL + PUBLISH, the namespace bumps),
    # not 2N. Each writer still returns only after a send that began after its call: as
    # before, its change is out of L2 and announced before it answers its client.

    async def invalidate(self, namespace: str, *keys: str) -> None:
        self.drop_local(namespace, keys)
        if self.l2 is None:
            return
        batch = self._join()
        batch.keys.setdefault(namespace, set()).update(keys)
        await asyncio.shield(batch.done)

    async def invalidate_namespace(self, namespace: str) -> None:
        self.drop_namespace(namespace, None)
        if self.l2 is None:
            return
        batch = self._join()
        batch.namespaces.add(namespace)
        await asyncio.shield(batch.done)

    def _join(self) -> _Batch:
        loop = asyncio.get_running_loop()
        batch = self._next
        if batch is None or batch.done.get_loop() is not loop:
            batch = self._next = _Batch(done=loop.create_future())
        sender = self._sender
        if sender is None or sender.done() or sender.get_loop() is not loop:
            self._sender = loop.create_task(self._send_batches())
        return batch

    async def _send_batches(self) -> None:
        while (batch := self._next) is not None:
            self._next = None
            try:
                await self._send(batch)
            except asyncio.CancelledError:
                for waiting in (batch, self._next):
                    if waiting is not None and not waiting.done.done():
                        waiting.done.cancel()
                raise
            except Exception as error:
                log.warning("cache_invalidation_failed", exc_info=True)
                batch.done.set_exception(error)
                batch.done.exception()  # retrieved: the waiters may all have gone
            else:
                batch.done.set_result(None)

    async def _send(self, batch: _Batch) -> None:
        await self._replay_pending()
        for namespace, keys in batch.keys.items():
            if not await self._delete_remote(namespace, keys):
                self._remember(namespace, keys)
            # Again: a reader may have refilled L1 from the old L2 entry while we waited.
            self.drop_local(namespace, keys)
        for namespace in sorted(batch.namespaces):
            version = await self._bump_remote(namespace)
            if version is None:
                self._pending.namespaces.add(namespace)
                # Keys of a version nobody else will use: this process stops reading old pages.
                version = f"local-{uuid.uuid4().hex}"
            self.drop_namespace(namespace, version)

    def drop_local(self, namespace: str, keys: Iterable[str]) -> None:
        l1 = self._l1.get(namespace)
        for key in keys:
            if l1 is not None:
                l1.pop(key, None)
            flight = self._flights.pop((namespace, key), None)
            if flight is not None:
                flight.stale = True

    def drop_namespace(self, namespace: str, version: str | None) -> None:
        if version is not None:
            self._versions[namespace] = version
        if (l1 := self._l1.get(namespace)) is not None:
            l1.clear()
        for flight_key in [k for k in self._flights if k[0] == namespace]:
            self._flights.pop(flight_key).stale = True

    def drop_everything(self) -> None:
        for namespace in list(self._l1) + [ns for ns, _ in self._flights]:
            self.drop_namespace(namespace, None)

    async def _delete_remote(self, namespace: str, keys: Iterable[str]) -> bool:
        assert self.l2 is not None
        keys = list(keys)
        version = self._versions.get(namespace, "0")
        l2_keys = [self._l2_key(namespace, version, key) for key in keys]
        doomed = [k for l2_key in l2_keys for k in (l2_key, f"{l2_key}:lease")]
        message = {"op": "del", "o": self.origin, "ns": namespace, "keys": keys}
        return await self.l2.delete_and_publish(doomed, self.channel, json.dumps(message).encode())

    async def _bump_remote(self, namespace: str) -> str | None:
        assert self.l2 is not None
        head = json.dumps({"op": "bump", "o": self.origin, "ns": namespace})[:-1] + ', "v": '
        return await self.l2.bump_and_publish(self._version_key(namespace), self.channel, head)

    def _remember(self, namespace: str, keys: Iterable[str]) -> None:
        pending = self._pending.keys.setdefault(namespace, set())
        pending.update(keys)
        if len(pending) > MAX_PENDING_KEYS:
            # A long outage with many writes: stop growing; those L2 entries expire by TTL.
            log.warning("cache_pending_invalidations_dropped", namespace=namespace)
            pending.clear()

    async def _replay_pending(self) -> bool:
        """Push the invalidations Redis missed; True when nothing is left pending."""
        if not self._pending or self.l2 is None or not self.l2.available:
            return not self._pending
        for namespace, keys in list(self._pending.keys.items()):
            if not await self._delete_remote(namespace, keys):
                return False
            del self._pending.keys[namespace]
        for namespace in list(self._pending.namespaces):
            version = await self._bump_remote(namespace)
            if version is None:
                return False
            self._pending.namespaces.discard(namespace)
            self.drop_namespace(namespace, version)
        log.info("cache_pending_invalidations_replayed")
        return True

    # ------------------------------------------------------------------ listener side
    async def resync(self) -> None:
        """After (re)subscribing: replay what Redis missed, adopt the shared namespace
        versions, and drop all of L1 (messages may have been missed while away)."""
        assert self.l2 is not None
        self.l2.mark_available()
        if not await self._replay_pending():
            raise ConnectionError("could not replay pending cache invalidations")
        namespaces = sorted(set(self._codecs) | set(self._versions))
        versions = await self.l2.read_versions([self._version_key(ns) for ns in namespaces])
        if versions is None:
            raise ConnectionError("could not read cache namespace versions")
        self._versions.update(zip(namespaces, versions, strict=True))
        self.drop_everything()

    def apply_message(self, raw: bytes) -> None:
        try:
            message = json.loads(raw)
            if message.get("o") == self.origin:
                return  # this process already applied it when it made the change
            if message["op"] == "del":
                self.drop_local(message["ns"], message["keys"])
            elif message["op"] == "bump":
                self.drop_namespace(message["ns"], str(message["v"]))
        except (ValueError, KeyError, TypeError):
            log.warning("cache_invalidation_unreadable", message=raw[:200])

    async def listen(self) -> None:
        """The invalidation listener; returns at once without L2 (embedded mode)."""
        if self.l2 is None or self._subscriber is None:
            return
        from backend.infrastructure.cache.listener import listen_for_invalidations

        await listen_for_invalidations(self, self._subscriber)

    # ------------------------------------------------------------------ helpers
    def _new_l1(self, namespace: str) -> TTLCache[str, Any]:
        ttl, maxsize = self._policy(namespace)
        cache: TTLCache[str, Any] = TTLCache(maxsize=maxsize, ttl=ttl)
        self._l1[namespace] = cache
        return cache

    def _l2_key(self, namespace: str, version: str, key: str) -> str:
        return f"{self._prefix}{namespace}:{version}:{key}"

    def _version_key(self, namespace: str) -> str:
        return f"{self._prefix}version:{namespace}"

    def _count(self, namespace: str, tier: str, result: str) -> None:
        labels = (namespace, tier, result)
        counter = self._counters.get(labels)
        if counter is None:
            counter = self._counters[labels] = CACHE_REQUESTS.labels(*labels)
        counter.inc()

    async def aclose(self) -> None:
        if self.l2 is not None:
            await self.l2.aclose()
