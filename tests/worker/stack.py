"""A throwaway stack for real worker processes: embedded (SQLite + SQLite broker) or full
(PostgreSQL + Redis broker under a unique key prefix), seen alike by the test and the
processes it starts."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import ExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from backend.bootstrap import Container, build_container
from backend.core.config import Settings
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


async def _delete_prefix(redis_url: str, prefix: str) -> None:
    client = Redis.from_url(redis_url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=500)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture
def make_stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., Stack]]:
    """`make_stack(mode, **settings)`: the settings apply to the test and its processes."""
    cleanups = ExitStack()

    def build(mode: str, **overrides: Any) -> Stack:
        values: dict[str, Any] = {"redis_key_prefix": f"ofworker:{uuid.uuid4().hex[:10]}:"}
        if mode == "embedded":
            database_url = str(request.getfixturevalue("sqlite_url"))
        else:
            database_url = str(request.getfixturevalue("pg_url"))
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
