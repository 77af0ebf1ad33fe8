"""Worker metrics: task outcomes and durations, served on WORKER_METRICS_PORT.

The prefork children run the tasks and record the samples; prometheus_client's
multiprocess mode (enabled by `worker/__init__.py` before it is imported) writes them to
per-pid files that the main process merges when scraped. The HTTP server runs in the
main process, which lives as long as the worker (children are replaced, e.g. after a
hard time limit, and their counters keep counting in the merge).
"""

from __future__ import annotations

import os
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread
from typing import Any

from celery.signals import (
    task_postrun,
    task_prerun,
    task_revoked,
    worker_init,
    worker_process_shutdown,
    worker_shutdown,
)

from backend.bootstrap import render_metrics
from backend.core.config import get_settings
from backend.core.logging import get_logger
from backend.core.metrics import WORKER_TASK_DURATION, WORKER_TASKS

log = get_logger(__name__)

_started: dict[str, float] = {}
_server: dict[str, ThreadingHTTPServer] = {}


@task_prerun.connect
def _task_started(task_id: str | None = None, **_: Any) -> None:
    if task_id is not None:
        _started[task_id] = time.perf_counter()


@task_postrun.connect
def _task_finished(
    task_id: str | None = None, task: Any = None, state: str | None = None, **_: Any
) -> None:
    started = _started.pop(task_id, None) if task_id is not None else None
    name = getattr(task, "name", "unknown")
    WORKER_TASKS.labels(task=name, outcome=(state or "unknown").lower()).inc()
    if started is not None:
        WORKER_TASK_DURATION.labels(task=name).observe(time.perf_counter() - started)


@task_revoked.connect
def _task_revoked(request: Any = None, expired: bool = False, **_: Any) -> None:
    name = getattr(request, "task", None) or getattr(request, "name", None) or "unknown"
    WORKER_TASKS.labels(task=name, outcome="expired" if expired else "revoked").inc()


class _MetricsHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] not in ("/metrics", "/"):
            self.send_error(404)
            return
        payload, content_type = render_metrics()
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # scrapes are not log lines
        return


def start_metrics_server(host: str, port: int) -> ThreadingHTTPServer | None:
    """Serve /metrics from this process; None (and a warning) when the port is taken."""
    try:
        server = ThreadingHTTPServer((host, port), _MetricsHandler)
    except OSError as error:
        log.warning("worker_metrics_unavailable", host=host, port=port, error=str(error))
        return None
    server.daemon_threads = True
    Thread(target=server.serve_forever, name="worker-metrics", daemon=True).start()
    log.info("worker_metrics_serving", host=host, port=server.server_address[1])
    return server


@worker_init.connect
def _serve_metrics(**_: Any) -> None:
    settings = get_settings()
    if settings.worker_metrics_port and "main" not in _server:
        server = start_metrics_server(settings.host, settings.worker_metrics_port)
        if server is not None:
            _server["main"] = server


@worker_shutdown.connect
def _stop_metrics(**_: Any) -> None:
    server = _server.pop("main", None)
    if server is not None:
        server.shutdown()
        server.server_close()


@worker_process_shutdown.connect
def _forget_live_gauges(**_: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid())
