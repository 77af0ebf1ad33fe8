"""The supervisor with real processes: a child that dies is started again (after a backoff
that grows while it keeps dying quickly) and the others are left alone; SIGTERM stops all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.processes import ROOT, alive, direct_children

pytestmark = pytest.mark.slow

SCRIPT = """
import sys
from pathlib import Path
from backend.supervisor import Backoff, Supervisor

sleep = [sys.executable, "-c", "import time; time.sleep(600)"]
victim = [sys.executable, "-c", "import time; time.sleep(601)"]
crash = [sys.executable, "-c", "raise SystemExit(3)"]
backoff = Backoff(first=0.2, factor=2, ceiling=0.8, stable_after=30)
sys.exit(Supervisor({"steady": sleep, "victim": victim, "crasher": crash},
                    cwd=Path.cwd(), backoff=backoff, stop_grace=5).run())
"""


def wait_for(predicate, timeout: float, message: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(message)


def sleepers(pid: int) -> set[int]:
    return {child for child, cmd in direct_children(pid).items() if "time.sleep" in cmd}


def test_a_dead_child_is_restarted_alone_and_sigterm_stops_everything(tmp_path: Path) -> None:
    log = tmp_path / "supervisor.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", SCRIPT],
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stderr=out,
        )
    try:
        wait_for(lambda: len(sleepers(proc.pid)) == 2, 20, "the two sleepers did not start")
        first = sleepers(proc.pid)
        (victim,) = (pid for pid, cmd in direct_children(proc.pid).items() if "601" in cmd)
        (steady,) = first - {victim}
        os.kill(victim, signal.SIGKILL)
        wait_for(
            lambda: len(sleepers(proc.pid)) == 2 and victim not in sleepers(proc.pid),
            20,
            f"the killed child was not restarted:\n{log.read_text()}",
        )
        assert steady in sleepers(proc.pid)  # the other child was left alone
        wait_for(
            lambda: "restarting it in 0.8s" in log.read_text(), 20, "no backoff for the crasher"
        )
        text = log.read_text()
        assert f"victim (pid {victim}) exited with -9" in text
        crasher_delays = [
            line.rsplit("restarting it in ", 1)[1]
            for line in text.splitlines()
            if line.startswith("orderflow: crasher") and "exited with 3" in line
        ]
        assert crasher_delays[:3] == ["0.2s", "0.4s", "0.8s"]
        assert proc.poll() is None  # still supervising
        children = sleepers(proc.pid)

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        wait_for(lambda: not any(alive(pid) for pid in children), 10, "children survived")
        assert log.read_text().rstrip().endswith("orderflow: stopped")
    finally:
        if proc.poll() is None:
            proc.kill()
