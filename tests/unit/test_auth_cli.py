"""`python -m backend create-admin`: the real command in a subprocess, on a real SQLite file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from backend.domain.users import Role
from backend.infrastructure.db.engine import create_engine
from backend.infrastructure.db.uow import SqlUnitOfWork
from backend.infrastructure.security.passwords import BcryptHasher


def run_cli(
    sqlite_url: str, tmp_path: Path, *args: str, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "ENVIRONMENT": "test",
        "DATABASE_URL": sqlite_url,
        "SECRET_KEY": "cli-test-secret-that-is-long-enough-0123456789",
        "BCRYPT_ROUNDS": "4",
        "REDIS_URL": "",
        "CELERY_BROKER_DIR": str(tmp_path / "broker"),
        "LOG_LEVEL": "WARNING",
    }
    return subprocess.run(
        [sys.executable, "-m", "backend", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )


async def stored_user(sqlite_url: str, email: str):  # type: ignore[no-untyped-def]
    engine = create_engine(sqlite_url)
    try:
        async with SqlUnitOfWork(engine) as uow:
            return await uow.users.get_by_email(email)
    finally:
        await engine.dispose()


async def test_create_admin_reads_the_password_from_stdin(sqlite_url: str, tmp_path: Path) -> None:
    done = run_cli(
        sqlite_url,
        tmp_path,
        "create-admin",
        "--email",
        "Root@Example.com",
        stdin="s3cret-admin-pw\n",
    )
    assert done.returncode == 0, done.stderr
    assert "created" in done.stdout
    assert "s3cret-admin-pw" not in done.stdout + done.stderr
    user = await stored_user(sqlite_url, "root@example.com")
    assert user is not None and user.role is Role.ADMIN and user.is_active
    assert await BcryptHasher(4).verify("s3cret-admin-pw", user.password_hash)


async def test_create_admin_promotes_an_existing_account(sqlite_url: str, tmp_path: Path) -> None:
    assert (
        run_cli(
            sqlite_url,
            tmp_path,
            "create-admin",
            "--email",
            "a@example.com",
            stdin="first-password\n",
        ).returncode
        == 0
    )
    again = run_cli(
        sqlite_url, tmp_path, "create-admin", "--email", "a@example.com", stdin="second-password\n"
    )
    assert again.returncode == 0, again.stderr
    assert "promoted" in again.stdout
    user = await stored_user(sqlite_url, "a@example.com")
    assert user is not None and await BcryptHasher(4).verify("second-password", user.password_hash)


@pytest.mark.parametrize(
    ("args", "stdin", "code", "message"),
    [
        (["--email", "a@example.com"], "short\n", 2, "at least 8 characters"),
        (["--email", "not-an-email"], "long-enough-pw\n", 2, "not a valid email"),
        (["--email", "a@example.com", "--password", "x" * 12], "", 2, "unrecognized arguments"),
    ],
)
async def test_create_admin_refuses_bad_input(
    sqlite_url: str, tmp_path: Path, args: list[str], stdin: str, code: int, message: str
) -> None:
    done = run_cli(sqlite_url, tmp_path, "create-admin", *args, stdin=stdin)
    assert done.returncode == code
    assert message in done.stderr
    assert await stored_user(sqlite_url, "a@example.com") is None


async def test_create_admin_on_an_unreachable_database_fails_cleanly(tmp_path: Path) -> None:
    done = run_cli(
        "postgresql+asyncpg://postgres@127.0.0.1:1/none",
        tmp_path,
        "create-admin",
        "--email",
        "a@example.com",
        stdin="long-enough-pw\n",
    )
    assert done.returncode == 1
    assert "database" in done.stderr and "Traceback" not in done.stderr
