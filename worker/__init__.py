"""The Celery worker and Beat of Orderflow.

Importing this package inside a `celery ... worker` process gives the worker a private,
fresh prometheus_client multiprocess directory *before* anything imports prometheus_client
(which picks its value store at import): the prefork children then write their samples
there and the main process serves the sum on WORKER_METRICS_PORT (see worker/metrics.py).
A private directory, because the API's own one (PROMETHEUS_MULTIPROC_DIR, inherited from
`make run`) must not mix worker and API series.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
DIR_PREFIX = "orderflow-worker-metrics-"


def _is_worker_command(argv: list[str]) -> bool:
    program = Path(argv[0]).as_posix() if argv else ""
    is_celery = program.endswith(("/celery", "celery/__main__.py")) or program == "celery"
    return is_celery and "worker" in argv[1:]


def _remove_dirs_of_dead_workers() -> None:
    """A SIGKILLed worker leaves its directory behind; the next worker sweeps it away."""
    for path in Path(tempfile.gettempdir()).glob(f"{DIR_PREFIX}*-*"):
        pid = path.name.removeprefix(DIR_PREFIX).split("-", 1)[0]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(path, ignore_errors=True)


def _use_private_metrics_dir() -> None:
    _remove_dirs_of_dead_workers()
    owner = os.getpid()
    directory = tempfile.mkdtemp(prefix=f"{DIR_PREFIX}{owner}-")
    os.environ[MULTIPROC_ENV] = directory

    def remove() -> None:
        if os.getpid() == owner:  # not in a forked child that happens to run atexit
            shutil.rmtree(directory, ignore_errors=True)

    atexit.register(remove)


if _is_worker_command(sys.argv) and "prometheus_client" not in sys.modules:
    _use_private_metrics_dir()
