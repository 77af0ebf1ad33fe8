"""Helpers shared by the test packages: service discovery, migrations, settings."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Any, NoReturn

import pytest
from sqlalchemy.engine import make_url

from backend.core.config import Settings

ROOT = Path(__file__).resolve().parent.parent


def service_url(env_var: str, what: str) -> str:
    """The URL of a real server for this test, or a visible skip (a failure in CI)."""
    url = os.environ.get(env_var)
    if url:
        return url
    skip_unless_allowed(f"{env_var} is not set: this test needs a real {what}")


def skip_unless_allowed(message: str) -> NoReturn:
    """A visible skip, or a failure under REQUIRE_SERVICES=1 (CI)."""
    if os.environ.get("REQUIRE_SERVICES") == "1":
        pytest.fail(f"{message} (REQUIRE_SERVICES=1 forbids skipping)")
    pytest.skip(message)


def clear_of_window_edges(margin: float = 5.0) -> None:
    """Sleep, if need be, until at least `margin` seconds remain before the next whole minute.

    `limits`' sliding-window counter weighs the previous window's hits by the time left in
    it and floors the sum, so just after a window boundary one hit more than the quota gets
    through (the approximation ADR 0011 accepts). Tests that count exact refusals start well
    inside a window (hour and day windows also begin on a whole minute)."""
    left = 60 - time.time() % 60
    if left < margin:
        time.sleep(left + 0.05)


def alembic_config(database_url: str) -> Any:
    from alembic.config import Config

    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = database_url
    return config


def migrate(database_url: str, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    from alembic import command

    command.downgrade(alembic_config(database_url), revision)


def pg_admin_dsn(url: str) -> str:
    """A plain asyncpg DSN to the server's `postgres` database, for CREATE/DROP DATABASE."""
    parsed = make_url(url).set(drivername="postgresql", database="postgres")
    return parsed.render_as_string(hide_password=False)


def with_database(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def unique_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def make_settings(tmp_path: Path, database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": "test",
        "database_url": database_url,
        "secret_key": "test-secret-key-that-is-long-enough-0123456789",
        "bcrypt_rounds": 4,
        "celery_broker_dir": str(tmp_path / "broker"),
        "redis_url": None,
        "rate_limit_enabled": False,
        "log_level": "WARNING",
        "redis_key_prefix": f"oftest:{uuid.uuid4().hex[:8]}:",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]
