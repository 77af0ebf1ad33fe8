"""`make run` (i.e. `python -m backend run`): API + worker + Beat in embedded mode, one stop."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.processes import alive, children_of, running_stack

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
