"""Start the API alone, as containers do (`python -m backend serve`), for end-to-end tests."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.e2e.processes import ROOT, alive, children_of, free_port, wait_until_healthy


@dataclass
class Served:
    proc: subprocess.Popen[str]
    base: str
    log_path: Path
    metrics_dir: Path
    env: dict[str, str]

    def worker_pids(self) -> set[int]:
        """uvicorn's worker processes (children of the supervisor), or itself with one worker."""
        children = {pid for pid in children_of(self.proc.pid) if alive(pid)}
        workers = {
            pid
            for pid in children
            if "multiprocessing.resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_text()
        }
        return workers or {self.proc.pid}

    def log_lines(self) -> list[str]:
        return [line for line in self.log_path.read_text().splitlines() if line.strip()]

    def json_logs(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log_lines()]


def migrate(env: dict[str, str], cwd: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "backend", "migrate"],
        cwd=cwd,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )


@contextmanager
def serving(tmp_path: Path, *, unset: tuple[str, ...] = (), **overrides: str) -> Iterator[Served]:
    """Migrate an SQLite database, then run `python -m backend serve` on a free port
    (production settings, JSON logs; `unset` names variables to leave out) until the block
    ends; SIGTERM, then SIGKILL leftovers."""
    port = free_port()
    metrics_dir = tmp_path / "prometheus-multiproc"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "ENVIRONMENT": "production",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'orderflow.sqlite'}",
        "CELERY_BROKER_DIR": str(tmp_path / "var"),
        "REDIS_URL": "",
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        **overrides,
    }
    for name in ("TEST_DATABASE_URL", *unset):
        env.pop(name, None)
    migrate(env, tmp_path)
    log_path = tmp_path / "api.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "backend", "serve"],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(base, proc, log_path)
        yield Served(proc, base, log_path, metrics_dir, env)
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is not None:
        return
    descendants = children_of(proc.pid)
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    for pid in descendants:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
