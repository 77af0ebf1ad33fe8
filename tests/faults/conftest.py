"""The fault suite's stack: `python -m backend run` (API, worker, Beat under the supervisor)
in full mode against a PostgreSQL and a Redis started here, on free ports, for each test,
so that the test may stop, kill and restart them."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.e2e.processes import direct_children, running_stack
from tests.faults.shop import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.helpers.postgres_server import PostgresServer
from tests.helpers.redis_server import RedisServer

DB_CONNECT_TIMEOUT = 3.0
FAST_WORKFLOW = {
    "ORDER_PROGRESSION_INTERVAL": "1",
    "ORDER_GRACE_PERIOD": "1",
    "ORDER_PROCESSING_TIME": "1",
    "OUTBOX_POLL_INTERVAL": "1",
    "WORKFLOW_RETRY_AFTER": "3",  # lost messages are re-published 3 s later
    "WORKFLOW_BATCH_SIZE": "10",  # many small batches: a kill lands inside one
    "WORKFLOW_MOVE_BATCH_SIZE": "10",
}


@dataclass
class FaultStack:
    supervisor: Any  # subprocess.Popen of `python -m backend run`
    base: str
    log_path: Path
    postgres: PostgresServer
    redis: RedisServer

    def child(self, *words: str) -> int:
        for pid, command in direct_children(self.supervisor.pid).items():
            if all(word in command for word in words):
                return pid
        raise AssertionError(f"no child {words}: {direct_children(self.supervisor.pid)}")

    def worker_pid(self) -> int:
        return self.child("celery", "worker")

    def api_pid(self) -> int:
        return self.child("uvicorn")

    def kill_worker(self) -> None:
        """SIGKILL the worker's main process and its pool children: no warm shutdown."""
        main = self.worker_pid()
        pool = list(direct_children(main))
        for pid in [main, *pool]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def logs(self) -> str:
        return self.log_path.read_text()[-8000:]

    def query(self, sql: str, *args: Any) -> list[Any]:
        dsn = self.postgres.url.replace("+asyncpg", "")

        async def run() -> list[Any]:
            conn = await asyncpg.connect(dsn)
            try:
                return list(await conn.fetch(sql, *args))
            finally:
                await conn.close()

        return asyncio.run(run())

    def order_ids(self) -> set[str]:
        return {str(row[0]) for row in self.query("SELECT id FROM orders")}

    def statuses(self) -> dict[str, str]:
        return {str(r[0]): r[1] for r in self.query("SELECT id, status FROM orders")}

    def moves(self) -> dict[tuple[str, str], int]:
        rows = self.query(
            "SELECT order_id, to_status, count(*) FROM order_status_history "
            "GROUP BY order_id, to_status"
        )
        return {(str(r[0]), r[1]): r[2] for r in rows}

    def unhandled_events(self) -> int:
        return int(self.query("SELECT count(*) FROM outbox_events WHERE handled_at IS NULL")[0][0])


@pytest.fixture
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis", keep_data=False)
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def stack(tmp_path: Path, postgres: PostgresServer, redis: RedisServer) -> Iterator[FaultStack]:
    env = {
        "DATABASE_URL": postgres.url,
        "REDIS_URL": redis.url,
        "SECRET_KEY": "fault-suite-secret-key-that-is-long-enough-0123",
        "FIRST_ADMIN_EMAIL": ADMIN_EMAIL,
        "FIRST_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "RATE_LIMIT_ENABLED": "false",
        "BCRYPT_ROUNDS": "4",
        "DB_CONNECT_TIMEOUT": str(DB_CONNECT_TIMEOUT),
        "LOG_LEVEL": "INFO",
        **FAST_WORKFLOW,
    }
    with running_stack(tmp_path, **env) as (proc, base, log_path):
        yield FaultStack(proc, base, log_path, postgres, redis)
