"""Stairway: every revision upgrades, downgrades and upgrades again, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest
from alembic.script import ScriptDirectory

from tests.support import (
    alembic_config,
    downgrade,
    migrate,
    pg_admin_dsn,
    service_url,
    unique_name,
    with_database,
)


def revisions() -> list[str]:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]


def stairway(url: str) -> None:
    for revision in revisions():
        migrate(url, revision)
        downgrade(url, "-1")
        migrate(url, revision)
    downgrade(url, "base")
    migrate(url, "head")


def test_revisions_form_one_linear_chain() -> None:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert len(script.get_heads()) == 1
    assert revisions()[0] == "0001"


def test_stairway_on_sqlite(tmp_path: Path) -> None:
    stairway(f"sqlite+aiosqlite:///{tmp_path / 'stairway.sqlite'}")


@pytest.mark.postgres
def test_stairway_on_postgres() -> None:
    base = service_url("TEST_DATABASE_URL", "PostgreSQL server")
    name = unique_name("orderflow_stairway")
    admin = pg_admin_dsn(base)

    async def sql(statement: str) -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(sql(f'CREATE DATABASE "{name}"'))
    try:
        stairway(with_database(base, name))
    finally:
        asyncio.run(sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
