"""A throwaway stack for real worker processes: embedded (SQLite + SQLite broker) or full
(PostgreSQL + Redis broker under a unique key prefix), seen alike by the test and the
processes it starts. `make_stack` is a fixture: test modules import it by name."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import ExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from backend.bootstrap import Container, build_container
from backend.core.config import Settings
from backend.infrastructure.db.tables import order_status_history, orders, outbox_events
from tests.helpers.orders import order_of, seed_product, seed_user
from tests.support import make_settings, service_url
from tests.worker.processes import Proc, stack_env, start_beat, start_worker

MODES = ["embedded", "full"]


@dataclass
class Stack:
    mode: str
    settings: Settings
    env: dict[str, str]
    workdir: Path
    procs: list[Proc] = field(default_factory=list)

    def worker(
        self, name: str = "w1", concurrency: int = 2, args: Sequence[str] = (), **env: Any
    ) -> Proc:
        overrides = {k.upper(): str(v) for k, v in env.items()}
        proc = start_worker({**self.env, **overrides}, self.workdir, name, concurrency, args)
        self.procs.append(proc)
        return proc

    def beat(self, name: str = "beat1") -> Proc:
        proc = start_beat(self.env, self.workdir, name)
        self.procs.append(proc)
        return proc

    @asynccontextmanager
    async def container(self) -> AsyncIterator[Container]:
        container = await build_container(self.settings)
        try:
            yield container
        finally:
            await container.aclose()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.log()[-6000:]}" for p in self.procs)

    async def rows(self, statement: Any) -> list[Any]:
        """Run a read on a fresh connection (no pool: safe across event loops)."""
        engine = create_async_engine(
            self.settings.database_url,
            poolclass=NullPool,
            connect_args={"timeout": 30} if self.settings.is_sqlite else {},
        )
        try:
            async with engine.connect() as conn:
                return list((await conn.execute(statement)).all())
        finally:
            await engine.dispose()

    async def statuses(self) -> dict[str, str]:
        return dict(await self.rows(select(orders.c.id, orders.c.status)))

    async def moves(self) -> dict[tuple[str, str], int]:
        """(order id, to_status) -> number of history rows: 1 for every step taken."""
        h = order_status_history
        counted = await self.rows(
            select(h.c.order_id, h.c.to_status, func.count()).group_by(h.c.order_id, h.c.to_status)
        )
        return {(order_id, to): n for order_id, to, n in counted}

    async def unhandled_events(self) -> int:
        rows = await self.rows(
            select(func.count())
            .select_from(outbox_events)
            .where(outbox_events.c.handled_at.is_(None))
        )
        return int(rows[0][0])


async def place_orders(
    stack: Stack, n: int, *, price: str = "10.00", quantity: int = 1
) -> list[str]:
    """`n` orders of one product through the orders service (the API's code path without
    HTTP), concurrently on PostgreSQL; each commit kicks the relay as a request would."""
    async with stack.container() as container:
        async with container.uow() as uow:
            user = await seed_user(uow)
            product = await seed_product(uow, stock=n * quantity, price=price)
            await uow.commit()
        command = order_of(user.id, (product.id, quantity))

        async def one() -> str:
            placement = await container.orders.place(command)
            assert placement.order is not None
            return placement.order.id

        lanes = 1 if stack.settings.is_sqlite else 8
        ids: list[str] = []
        for start in range(0, n, lanes):
            ids += await asyncio.gather(*(one() for _ in range(min(lanes, n - start))))
    return ids


async def wait_for(
    predicate: Callable[[], Awaitable[bool]],
    timeout: float,
    message: Callable[[], Awaitable[str] | str] | str,
) -> None:
    """Poll an async condition; a failure says what never happened (no timing assertion)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.25)
    if callable(message):
        explained = message()
        message = explained if isinstance(explained, str) else await explained
    raise AssertionError(message)


async def _delete_prefix(redis_url: str, prefix: str) -> None:
    client = Redis.from_url(redis_url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=500)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


def _database_for(request: pytest.FixtureRequest, mode: str) -> str:
    return str(request.getfixturevalue("sqlite_url" if mode == "embedded" else "pg_url"))


@pytest.fixture
def make_stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., Stack]]:
    """`make_stack(mode, **settings)`: the settings apply to the test and its processes.

    A test parametrized on `mode` gets its database prepared here, before it runs (async
    tests cannot set up the migrated database from inside their event loop)."""
    cleanups = ExitStack()
    databases: dict[str, str] = {}
    params = getattr(request.node, "callspec", None)
    if params is not None and "mode" in params.params:
        databases[params.params["mode"]] = _database_for(request, params.params["mode"])

    def build(mode: str, **overrides: Any) -> Stack:
        values: dict[str, Any] = {"redis_key_prefix": f"ofworker:{uuid.uuid4().hex[:10]}:"}
        database_url = databases.get(mode) or _database_for(request, mode)
        if mode == "full":
            values["redis_url"] = service_url("TEST_REDIS_URL", "Redis server")
            prefix, redis_url = values["redis_key_prefix"], values["redis_url"]
            cleanups.callback(lambda: asyncio.run(_delete_prefix(redis_url, prefix)))
        values.update(overrides)
        settings = make_settings(tmp_path, database_url, **values)
        env = stack_env(
            tmp_path,
            database_url,
            **{k: ("" if v is None else v) for k, v in values.items()},
        )
        stack = Stack(mode, settings, env, tmp_path / "procs")
        cleanups.callback(lambda: [proc.stop() for proc in stack.procs])
        return stack

    with cleanups:
        yield build
