"""The processes under test: the real API (`python -m backend serve`: production settings,
one uvicorn process, full mode on PostgreSQL and Redis), the baselines with the same uvicorn
flags, and a Celery worker; each started on the server core, stopped and reaped after."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from backend.cli import uvicorn_command
from backend.core.config import Settings

ROOT = Path(__file__).resolve().parent.parent
# Limits far above what one wrk run sends: the limiter's cost is measured, never its refusals.
UNLIMITED = "1000000000/minute"


@dataclass(frozen=True, slots=True)
class Stack:
    """Where the run's services are and what it may leave behind in them."""

    database_url: str  # postgresql+asyncpg://... of the throwaway bench database
    redis_url: str
    key_prefix: str  # every Redis key of the run starts with it (deleted afterwards)
    scratch: Path  # broker dir, metrics dir


def api_env(stack: Stack, port: int, **overrides: str) -> dict[str, str]:
    env = {
        **os.environ,
        "ENVIRONMENT": "production",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "API_WORKERS": "1",
        "DATABASE_URL": stack.database_url,
        "REDIS_URL": stack.redis_url,
        "REDIS_KEY_PREFIX": stack.key_prefix,
        "CELERY_BROKER_DIR": str(stack.scratch),
        "PROMETHEUS_MULTIPROC_DIR": str(stack.scratch / f"prometheus-{port}"),
        "ACCESS_TOKEN_TTL_SECONDS": "3600",
        "BCRYPT_ROUNDS": "4",
        "RATE_LIMIT_ENABLED": "false",
        "RATE_LIMIT_DEFAULT": UNLIMITED,
        "RATE_LIMIT_AUTHENTICATED": UNLIMITED,
        "RATE_LIMIT_LOGIN": UNLIMITED,
        "RATE_LIMIT_REGISTER": UNLIMITED,
        "LOGIN_MAX_FAILURES": "1000000",
    }
    env.pop("PYTEST_CURRENT_TEST", None)
    env.update(overrides)
    return env


def baseline_command(port: int) -> list[str]:
    """The API's uvicorn command line, with the baselines' app and no logging config."""
    settings = Settings(_env_file=None, host="127.0.0.1", port=port, api_workers=1)
    command = uvicorn_command(settings, Path("unused"))
    at = command.index("--log-config")
    del command[at : at + 2]
    app = command.index("backend.api.app:create_app")
    command[app] = "bench.baselines:create_app"
    return [*command, "--log-level", "warning"]


@dataclass(slots=True)
class Server:
    name: str
    process: subprocess.Popen[bytes]
    base_url: str

    def rss_bytes(self) -> int:
        """Resident memory of the serving process (`serve` execs uvicorn: same pid)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS line")


def _wait_until_up(server: Server, path: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited with {server.process.returncode}")
        try:
            if httpx.get(server.base_url + path, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{server.name} did not answer {path} within {seconds:.0f} s")


@contextmanager
def running(
    name: str,
    command: list[str],
    env: Mapping[str, str],
    port: int,
    ready_path: str,
    pin: tuple[str, ...],
) -> Iterator[Server]:
    log = open(Path(env["CELERY_BROKER_DIR"]) / f"{name}.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [*pin, *command], env=dict(env), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log
    )
    server = Server(name, process, f"http://127.0.0.1:{port}")
    try:
        _wait_until_up(server, ready_path)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def api(
    stack: Stack, port: int, pin: tuple[str, ...], **overrides: str
) -> AbstractContextManager[Server]:
    command = [sys.executable, "-m", "backend", "serve"]
    env = api_env(stack, port, **overrides)
    return running(f"api-{port}", command, env, port, "/api/v1/health", pin)


def baseline(
    stack: Stack, port: int, pin: tuple[str, ...], dsn: str, product_json: str
) -> AbstractContextManager[Server]:
    env = {
        **os.environ,
        "CELERY_BROKER_DIR": str(stack.scratch),
        "BENCH_BASELINE_DSN": dsn,
        "BENCH_BASELINE_PRODUCT": product_json,
        "PYTHONPATH": str(ROOT),
    }
    return running(f"baseline-{port}", baseline_command(port), env, port, "/bare", pin)


def worker_command(concurrency: int = 1) -> list[str]:
    return [
        sys.executable, "-m", "celery", "-A", "worker.celery_app", "worker",
        "--concurrency", str(concurrency), "--loglevel", "WARNING", "--without-gossip",
        "--without-mingle", "--without-heartbeat", "--queues", "default,workflow,notifications",
    ]  # fmt: skip


@contextmanager
def worker(
    stack: Stack, metrics_port: int, pin: tuple[str, ...], **overrides: str
) -> Iterator[subprocess.Popen[bytes]]:
    env = api_env(stack, 0, WORKER_METRICS_PORT=str(metrics_port), **overrides)
    env.pop("PORT")
    env.pop("PROMETHEUS_MULTIPROC_DIR")
    log = open(stack.scratch / f"worker-{metrics_port}.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [*pin, *worker_command()],
        env=env,
        cwd=stack.scratch,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the worker exited with {process.returncode}")
            try:
                httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the worker's metrics did not come up in 60 s") from None
                time.sleep(0.2)
        yield process
    finally:
        process.terminate()  # a job still running is cut short: the database is thrown away
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
