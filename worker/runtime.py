"""Per-process async runtime for tasks: one event loop and one container per worker process.

Created lazily on the first task, i.e. after the prefork pool has forked, so no
engine, pool or socket is ever shared between processes.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from celery.signals import worker_process_init, worker_process_shutdown

from backend.bootstrap import Container, build_container
from backend.core.config import get_settings

T = TypeVar("T")

_state: dict[str, Any] = {"pid": None, "loop": None, "container": None}


def _loop_and_container() -> tuple[asyncio.AbstractEventLoop, Container]:
    if _state["pid"] != os.getpid():  # first use in this process (or inherited across a fork)
        loop = asyncio.new_event_loop()
        from worker.celery_app import app

        container = loop.run_until_complete(build_container(get_settings(), celery=app))
        _state.update(pid=os.getpid(), loop=loop, container=container)
    return _state["loop"], _state["container"]


def run(job: Callable[[Container], Awaitable[T]]) -> T:
    loop, container = _loop_and_container()
    return loop.run_until_complete(job(container))


@worker_process_init.connect
def _forget_parent_runtime(**_: Any) -> None:
    _state.update(pid=None, loop=None, container=None)


@worker_process_shutdown.connect
def _close_runtime(**_: Any) -> None:
    if _state["pid"] == os.getpid() and _state["container"] is not None:
        _state["loop"].run_until_complete(_state["container"].aclose())
        _state["loop"].close()
        _state.update(pid=None, loop=None, container=None)
