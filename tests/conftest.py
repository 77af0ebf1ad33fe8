"""Fixtures: real databases (SQLite always, PostgreSQL when TEST_DATABASE_URL is set), Redis,
settings, and the app driven through httpx."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from backend.core.config import Settings
from backend.infrastructure.db.tables import metadata
from tests.support import (
    make_settings,
    migrate,
    pg_admin_dsn,
    service_url,
    unique_name,
    with_database,
)

os.environ.setdefault("ENVIRONMENT", "test")


# --------------------------------------------------------------------------- databases
@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (migrating once is the slow part)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.sqlite"
    migrate(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "orderflow.sqlite"
    shutil.copy(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """A throwaway, migrated PostgreSQL database for this test run, dropped at the end."""
    base = service_url("TEST_DATABASE_URL", "PostgreSQL server")
    name = unique_name("orderflow_test")
    admin = pg_admin_dsn(base)

    async def create() -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    async def drop() -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(create())
    url = with_database(base, name)
    migrate(url)
    yield url
    asyncio.run(drop())


async def truncate_all(url: str) -> None:
    engine = create_async_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    async with engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {tables} CASCADE"))
    await engine.dispose()


@pytest.fixture
async def pg_url(pg_server_url: str) -> str:
    await truncate_all(pg_server_url)
    return pg_server_url


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Runs the test once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("pg_url"))


# --------------------------------------------------------------------------- redis
@pytest.fixture
def redis_url() -> str:
    return service_url("TEST_REDIS_URL", "Redis server")


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[Any]:
    """A private redis-server on a free port, for outage tests (never the shared one); its
    data survives a stop and start."""
    yield from _own_redis(tmp_path, keep_data=True)


@pytest.fixture
def own_redis_without_persistence(tmp_path: Path) -> Iterator[Any]:
    """Like `own_redis`, but a stop is a SIGKILL and a start comes back empty."""
    yield from _own_redis(tmp_path, keep_data=False)


def _own_redis(tmp_path: Path, *, keep_data: bool) -> Iterator[Any]:
    from tests.helpers.redis_server import RedisServer

    server = RedisServer(tmp_path / "redis", keep_data=keep_data)
    server.start()
    try:
        yield server
    finally:
        server.close()


# --------------------------------------------------------------------------- app
@pytest.fixture
def settings(tmp_path: Path, sqlite_url: str) -> Settings:
    return make_settings(tmp_path, sqlite_url)


@pytest.fixture
def settings_for(tmp_path: Path) -> Any:
    """Build settings for a given database URL (and overrides)."""

    def build(database_url: str, **overrides: Any) -> Settings:
        return make_settings(tmp_path, database_url, **overrides)

    return build


def _state_per_request(app: Any) -> Any:
    """Give each request its own copy of the lifespan state, as uvicorn does: asgi-lifespan
    hands every request the SAME dict, so concurrent requests would share request ids and
    user ids (scope["state"])."""

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan" and "state" in scope:
            scope = {**scope, "state": dict(scope["state"])}
        await app(scope, receive, send)

    return wrapped


async def _client_for(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    from backend.api.app import create_app

    app = create_app(settings)
    async with LifespanManager(_state_per_request(app)) as manager:
        transport = httpx.ASGITransport(app=manager.app, client=("203.0.113.7", 51234))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app on embedded SQLite, driven through httpx."""
    async for c in _client_for(settings):
        yield c


@pytest.fixture
def client_for() -> Any:
    """`async with client_for(settings) as c:` for tests that need other settings."""
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def factory(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
        async for c in _client_for(settings):
            yield c

    return factory
