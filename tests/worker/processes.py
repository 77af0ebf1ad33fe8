"""Real Celery workers and Beat processes for the worker and workflow tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.e2e.processes import ROOT, alive, children_of, free_port

QUEUES = "default,workflow,notifications"


def stack_env(tmp_path: Path, database_url: str, **overrides: Any) -> dict[str, str]:
    """Environment of a worker/Beat/API process: a throwaway database and broker."""
    values: dict[str, Any] = {
        "ENVIRONMENT": "test",
        "DATABASE_URL": database_url,
        "SECRET_KEY": "test-secret-key-that-is-long-enough-0123456789",
        "CELERY_BROKER_DIR": str(tmp_path / "broker"),
        "REDIS_URL": "",
        "CELERY_BROKER_URL": "",
        "REDIS_KEY_PREFIX": f"oftest:{os.getpid()}:{tmp_path.name}:",
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
        "WORKER_METRICS_PORT": "0",
        "RATE_LIMIT_ENABLED": "false",
        "HEARTBEAT_INTERVAL": "3600",
        "DB_POOL_SIZE": "5",
    }
    values.update(overrides)
    return {key.upper(): str(value) for key, value in values.items()}


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    descendants: set[int] = field(default_factory=set)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def json_lines(self) -> list[dict[str, Any]]:
        lines = []
        for line in self.log().splitlines():
            if line.startswith("{"):
                try:
                    lines.append(json.loads(line))
                except ValueError:
                    continue
        return lines

    def refresh_descendants(self) -> set[int]:
        self.descendants |= children_of(self.popen.pid)
        return self.descendants

    def kill(self) -> None:
        """SIGKILL the process and every child it forked: no warm shutdown, no restore."""
        pids = [self.popen.pid, *self.refresh_descendants()]
        for pid in pids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        self.popen.wait(timeout=10)

    def stop(self, timeout: float = 20) -> None:
        self.refresh_descendants()
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        for pid in self.descendants:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def _spawn(name: str, argv: list[str], env: dict[str, str], workdir: Path) -> Proc:
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / f"{name}.log"
    with log_path.open("wb") as log:
        popen = subprocess.Popen(
            argv,
            cwd=workdir,  # no stray .env
            env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Proc(name, popen, log_path)


def celery(*args: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "worker.celery_app", *args]


def worker_argv(name: str, concurrency: int = 2, extra: Sequence[str] = ()) -> list[str]:
    return celery(
        "worker",
        "--loglevel",
        "INFO",
        "--queues",
        QUEUES,
        "--concurrency",
        str(concurrency),
        "--hostname",
        f"{name}@%h",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        *extra,
    )


@contextmanager
def running(procs: list[Proc]) -> Iterator[list[Proc]]:
    try:
        yield procs
    finally:
        for proc in procs:
            proc.stop()


def start_worker(
    env: dict[str, str],
    workdir: Path,
    name: str = "w1",
    concurrency: int = 2,
    extra: Sequence[str] = (),
) -> Proc:
    return _spawn(name, worker_argv(name, concurrency, extra), env, workdir)


def start_beat(env: dict[str, str], workdir: Path, name: str = "beat1") -> Proc:
    argv = celery(
        "beat",
        "--loglevel",
        "INFO",
        "--schedule",
        str(workdir / f"{name}-schedule"),
        "--pidfile=",
        "--max-interval",
        "1",
    )
    return _spawn(name, argv, env, workdir)


def wait_until(
    predicate: Callable[[], bool], timeout: float, message: Callable[[], str] | str
) -> None:
    """Poll until `predicate()` holds; a failure names what never happened (no timing check)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(message() if callable(message) else message)


__all__ = [
    "Proc",
    "free_port",
    "running",
    "stack_env",
    "start_beat",
    "start_worker",
    "wait_until",
]
