"""The worker's metrics port sums what every prefork child recorded, and keeps counting
across a child's death (prometheus_client multiprocess mode)."""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.processes import alive
from tests.worker.processes import Proc, free_port, wait_until
from tests.worker.stack import Stack

pytestmark = pytest.mark.slow

HEARTBEAT = "orderflow.heartbeat"


def scrape(port: int) -> list[Any] | None:
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except httpx.HTTPError:
        return None
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def sample(port: int, name: str, **labels: str) -> float | None:
    for s in scrape(port) or []:
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
            return float(s.value)
    return None


def counted_outcomes(port: int) -> Counter[str]:
    """worker_tasks_total of the heartbeat task, per outcome, as the main process serves it."""
    return Counter(
        {
            s.labels["outcome"]: int(s.value)
            for s in scrape(port) or []
            if s.name == "worker_tasks_total" and s.labels.get("task") == HEARTBEAT
        }
    )


def logged_outcomes(worker: Proc) -> Counter[str]:
    """What the children say they did with each heartbeat (Celery's own trace lines)."""
    outcomes: Counter[str] = Counter()
    for line in worker.json_lines():
        event = str(line.get("event", ""))
        if not event.startswith(f"Task {HEARTBEAT}["):
            continue
        if " succeeded in " in event:
            outcomes["success"] += 1
        elif " raised unexpected" in event:
            outcomes["failure"] += 1
        elif event.endswith(" received"):
            outcomes["received"] += 1
    return outcomes


async def publish_heartbeats(stack: Stack, n: int) -> None:
    async with stack.container() as container:
        for _ in range(n):
            await container.tasks.publish(HEARTBEAT)


def test_task_counts_of_every_child_are_summed_even_after_the_child_exited(
    make_stack: Any,
) -> None:
    """Children are recycled after 4 tasks each: 30 tasks run in 8 or more processes, most
    of them gone by the time of the scrape, and every one of the 30 is counted, under the
    outcome its child logged (a heartbeat that failed is counted as a failure, not lost)."""
    port = free_port()
    stack = make_stack("embedded", host="127.0.0.1", worker_metrics_port=port)
    worker = stack.worker(concurrency=2, args=["--max-tasks-per-child", "4"])

    def diagnosis() -> str:
        problems = [
            line
            for line in worker.json_lines()
            if line.get("level") in ("warning", "error", "critical")
        ]
        return (
            f"counted={dict(counted_outcomes(port))} logged={dict(logged_outcomes(worker))}\n"
            f"warnings and errors: {problems}\n{stack.logs()}"
        )

    asyncio.run(publish_heartbeats(stack, 30))
    wait_until(lambda: counted_outcomes(port).total() == 30, 120, diagnosis)

    logged = logged_outcomes(worker)
    assert logged["received"] == 30, diagnosis()
    assert counted_outcomes(port) == Counter({k: logged[k] for k in ("success", "failure")})
    assert sample(port, "worker_task_duration_seconds_count", task=HEARTBEAT) == 30
    ran_in = {line["pid"] for line in worker.json_lines() if line["event"] == "worker_heartbeat"}
    assert len(ran_in) >= 8  # the pool really was replaced several times
    assert sum(alive(pid) for pid in ran_in) <= 2  # and most of those processes are gone
    assert worker.popen.pid not in ran_in


def test_a_new_worker_sweeps_away_the_metrics_dirs_of_dead_workers(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import worker

    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    dead_pid = 2**22 + 12345  # above the kernel's pid_max: never alive
    dead = tmp_path / f"{worker.DIR_PREFIX}{dead_pid}-abc"
    live = tmp_path / f"{worker.DIR_PREFIX}{os.getpid()}-def"
    for directory in (dead, live):
        directory.mkdir()
        (directory / "counter_1.db").write_bytes(b"x")

    worker._remove_dirs_of_dead_workers()

    assert not dead.exists() and live.exists()
