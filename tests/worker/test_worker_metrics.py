"""The worker's metrics port sums what every prefork child recorded, and keeps counting
across a child's death (prometheus_client multiprocess mode)."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.processes import alive
from tests.worker.processes import free_port, wait_until
from tests.worker.stack import Stack

pytestmark = pytest.mark.slow

HEARTBEAT = "orderflow.heartbeat"


def sample(port: int, name: str, **labels: str) -> float | None:
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except httpx.HTTPError:
        return None
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return None


async def publish_heartbeats(stack: Stack, n: int) -> None:
    async with stack.container() as container:
        for _ in range(n):
            await container.tasks.publish(HEARTBEAT)


def test_task_counts_of_every_child_are_summed_even_after_the_child_exited(
    make_stack: Any,
) -> None:
    """Children are recycled after 4 tasks each: 30 tasks run in 8 or more processes, most
    of them gone by the time of the scrape, and every one of the 30 is counted."""
    port = free_port()
    stack = make_stack("embedded", host="127.0.0.1", worker_metrics_port=port)
    worker = stack.worker(concurrency=2, args=["--max-tasks-per-child", "4"])

    def successes() -> float | None:
        return sample(port, "worker_tasks_total", task=HEARTBEAT, outcome="success")

    asyncio.run(publish_heartbeats(stack, 30))
    wait_until(lambda: successes() == 30, 120, lambda: f"{successes()=}\n{stack.logs()}")
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
