"""prometheus_client multiprocess mode (docs/adr/0012-observability.md).

With `PROMETHEUS_MULTIPROC_DIR` set before the first import of prometheus_client, every
process writes its samples to memory-mapped files in that directory and /metrics, whichever
worker answers it, merges all of them: counters and histograms are summed over the workers
(dead ones included, so a restarted worker never makes a counter go backwards), gauges
follow their declared `multiprocess_mode`.

The directory must be emptied when the server (not a worker) starts, otherwise the files of
the previous run are merged in: `python -m backend serve` does it before starting uvicorn.

Process metrics (CPU, memory, open fds) are not part of the merged files; they are read from
/proc for every live process that wrote to the directory and labelled with its `pid`.

Gauges in a `live*` mode must forget a worker that died (uvicorn replaces it under a new
pid); gunicorn has a hook for that, uvicorn has none, so each scrape marks the pids that
no longer exist as dead (their counters stay in the sums).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from functools import partial
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
    multiprocess,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_PID_IN_FILENAME = re.compile(r"_(\d+)\.db$")


def prepare_multiproc_dir(path: str | Path) -> Path:
    """Create the directory and delete the previous run's files (call before any worker)."""
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink(missing_ok=True)
    return directory


class LiveProcessesCollector(Collector):
    """`process_*` series of each live process that writes to the multiprocess directory."""

    def __init__(self, directory: Path, proc: str = "/proc") -> None:
        self.directory = directory
        self.proc = proc

    def recorded_pids(self) -> set[int]:
        return {
            int(match.group(1))
            for path in self.directory.glob("*.db")
            if (match := _PID_IN_FILENAME.search(path.name))
        }

    def live_pids(self) -> list[int]:
        return sorted(pid for pid in self.recorded_pids() if Path(self.proc, str(pid)).is_dir())

    def forget_dead(self) -> None:
        live = set(self.live_pids())
        for pid in self.recorded_pids() - live:
            multiprocess.mark_process_dead(pid, str(self.directory))  # type: ignore[no-untyped-call]

    def collect(self) -> Iterator[Metric]:
        merged: dict[str, Metric] = {}
        for pid in self.live_pids():
            collector = ProcessCollector(pid=partial(int, pid), proc=self.proc, registry=None)
            for family in collector.collect():
                target = merged.setdefault(
                    family.name, Metric(family.name, family.documentation, family.type)
                )
                for sample in family.samples:
                    target.add_sample(sample.name, {**sample.labels, "pid": str(pid)}, sample.value)
        yield from merged.values()


class Union(Collector):
    """Several registries as one collector (for a single-process exposition)."""

    def __init__(self, *registries: CollectorRegistry) -> None:
        self.registries = registries

    def collect(self) -> Iterator[Metric]:
        for registry in self.registries:
            yield from registry.collect()


def exposition_registry(extra: CollectorRegistry | None = None) -> CollectorRegistry:
    directory = os.environ.get(MULTIPROC_ENV)
    if not directory:
        # One process: the default registry (business and process metrics) and `extra`.
        if extra is None:
            return REGISTRY
        combined = CollectorRegistry(auto_describe=False)
        combined.register(Union(REGISTRY, extra))
        return combined
    # Every process's samples are in the files, whichever registry declared them.
    processes = LiveProcessesCollector(Path(directory))
    processes.forget_dead()
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    registry.register(processes)
    PlatformCollector(registry=registry)
    return registry


def metrics_exposition(extra: CollectorRegistry | None = None) -> tuple[bytes, str]:
    """The /metrics payload and its content type."""
    return generate_latest(exposition_registry(extra)), CONTENT_TYPE_LATEST
