"""BENCH_PROFILE=DIR: a py-spy profile of the API while a scenario runs, one collapsed-stack
file per scenario (`DIR/<scenario>.txt`; flamegraph tools and `sort` read it)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"  # the venv's dev dependency
    return str(beside) if beside.exists() else shutil.which("py-spy")


@contextmanager
def profiled(pid: int, scenario: str) -> Iterator[None]:
    directory = os.environ.get("BENCH_PROFILE")
    binary = _py_spy()
    if not directory or binary is None:
        yield
        return
    Path(directory).mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^a-z0-9]+", "-", scenario.lower()).strip("-")
    output = Path(directory) / f"{name}.txt"
    recorder = subprocess.Popen(
        [binary, "record", "--pid", str(pid), "--format", "raw", "--rate", "250",
         "--nonblocking", "--output", str(output)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield
    finally:
        recorder.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        recorder.wait(timeout=60)
