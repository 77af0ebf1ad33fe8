"""`make run` (i.e. `python -m backend run`): API + worker + Beat in embedded mode, one stop."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.processes import alive, children_of, direct_children, running_stack

pytestmark = pytest.mark.slow


def wait_for(predicate, timeout: float, message: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(message)


def test_run_serves_probes_docs_metrics_and_a_working_worker(tmp_path: Path) -> None:
    with running_stack(tmp_path, HEARTBEAT_INTERVAL="1") as (proc, base, log_path):
        ready = httpx.get(f"{base}/api/v1/readiness", timeout=5)
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["broker"]["status"] == "ok"
        assert httpx.get(f"{base}/docs", timeout=5).status_code == 200
        assert "http_requests_total" in httpx.get(f"{base}/metrics", timeout=5).text

        # Beat schedules the heartbeat, the worker runs it against the database.
        wait_for(
            lambda: "worker_heartbeat" in log_path.read_text(), 30, "no heartbeat from the worker"
        )
        descendants = children_of(proc.pid)
        commands = [Path(f"/proc/{pid}/cmdline").read_text() for pid in descendants if alive(pid)]
        assert any("celery" in c and "worker" in c for c in commands)
        assert any("celery" in c and "beat" in c for c in commands)
        assert any("uvicorn" in c for c in commands)

        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        wait_for(
            lambda: not any(alive(pid) for pid in descendants), 10, "processes survived SIGTERM"
        )
        assert proc.returncode == 0


def child_named(pid: int, *words: str) -> int | None:
    for child, command in direct_children(pid).items():
        if all(word in command for word in words):
            return child
    return None


def test_run_restarts_a_dead_worker_beat_or_api_and_keeps_serving(tmp_path: Path) -> None:
    with running_stack(tmp_path, HEARTBEAT_INTERVAL="1") as (proc, base, log_path):
        for words in (("celery", "worker"), ("celery", "beat"), ("uvicorn",)):
            victim = child_named(proc.pid, *words)
            assert victim is not None, direct_children(proc.pid)
            os.kill(victim, signal.SIGKILL)
            wait_for(
                lambda words=words, victim=victim: (
                    child_named(proc.pid, *words) not in (None, victim)
                ),
                30,
                f"{words} was not restarted:\n{log_path.read_text()[-3000:]}",
            )
            if words[0] == "celery":  # the API never stopped serving
                assert httpx.get(f"{base}/api/v1/health", timeout=5).status_code == 200
        wait_for(lambda: _healthy(base), 60, "the restarted API does not answer")
        heartbeats = log_path.read_text().count("worker_heartbeat")
        wait_for(
            lambda: log_path.read_text().count("worker_heartbeat") > heartbeats,
            60,
            "no heartbeat through the restarted worker and Beat",
        )
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/api/v1/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
