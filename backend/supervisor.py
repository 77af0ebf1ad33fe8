"""`make run`'s process supervisor: keep every child running until told to stop (ADR 0017).

A child that exits (crash, OOM kill, an unrecoverable broker error) is started again after a
backoff that doubles with each quick death and resets once the child has stayed up a while;
the other children are left alone, so a dying worker never takes the API down. Only SIGTERM
or SIGINT to the supervisor stops everything: SIGTERM to each child, SIGKILL after a grace.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

POLL_SECONDS = 0.2


@dataclass(frozen=True)
class Backoff:
    """Delay before restart number n (1-based) of a child that keeps dying quickly."""

    first: float = 1.0
    factor: float = 2.0
    ceiling: float = 30.0
    # A child that ran this long before dying was healthy: its next restart is quick again.
    stable_after: float = 30.0

    def delay(self, quick_deaths: int) -> float:
        return min(self.ceiling, self.first * self.factor ** max(0, quick_deaths - 1))


@dataclass
class Child:
    name: str
    argv: Sequence[str]
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restart_at: float | None = None
    quick_deaths: int = 0
    restarts: int = field(default=0)


def say(message: str) -> None:
    print(f"orderflow: {message}", file=sys.stderr, flush=True)


class Supervisor:
    def __init__(
        self,
        commands: Mapping[str, Sequence[str]],
        *,
        cwd: Path,
        backoff: Backoff | None = None,
        stop_grace: float = 10.0,
        preexec_fn: Callable[[], None] | None = None,
    ) -> None:
        self.children = [Child(name, list(argv)) for name, argv in commands.items()]
        self.cwd = cwd
        self.backoff = backoff or Backoff()
        self.stop_grace = stop_grace
        self.preexec_fn = preexec_fn
        self.stopping = False

    def request_stop(self, signum: int, _frame: object) -> None:
        self.stopping = True

    def run(self) -> int:
        """Until SIGTERM/SIGINT: start, watch and restart the children; then stop them."""
        signal.signal(signal.SIGINT, self.request_stop)
        signal.signal(signal.SIGTERM, self.request_stop)
        for child in self.children:
            self._start(child)
        while not self.stopping:
            self.tick(time.monotonic())
            time.sleep(POLL_SECONDS)
        self.stop_all()
        return 0

    def tick(self, now: float) -> None:
        for child in self.children:
            if child.restart_at is not None:
                if now >= child.restart_at:
                    self._start(child)
            elif child.proc is not None and child.proc.poll() is not None:
                self._schedule_restart(child, now)

    def _start(self, child: Child) -> None:
        child.proc = subprocess.Popen(child.argv, cwd=self.cwd, preexec_fn=self.preexec_fn)  # noqa: S603 (our own argv)
        child.started_at = time.monotonic()
        child.restart_at = None
        say(f"started {child.name} (pid {child.proc.pid})")

    def _schedule_restart(self, child: Child, now: float) -> None:
        assert child.proc is not None
        lived = now - child.started_at
        child.quick_deaths = 1 if lived >= self.backoff.stable_after else child.quick_deaths + 1
        delay = self.backoff.delay(child.quick_deaths)
        child.restart_at = now + delay
        child.restarts += 1
        say(
            f"{child.name} (pid {child.proc.pid}) exited with {child.proc.returncode} after "
            f"{lived:.1f}s; restarting it in {delay:g}s"
        )

    def stop_all(self) -> None:
        running = [c.proc for c in self.children if c.proc is not None and c.proc.poll() is None]
        for proc in running:
            proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_grace
        for proc in running:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        say("stopped")
