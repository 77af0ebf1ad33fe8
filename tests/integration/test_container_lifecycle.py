"""Closing the container stops its background loops without cutting a query in half.

A loop cancelled mid-statement leaves the driver's work running: with aiosqlite its thread
later answers an event loop that is closed ("Event loop is closed" in a thread), with a
network driver the connection is dropped instead of returned. Loops spawned with
`returns_when_stopping` finish their statement and return; the others are cancelled.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from backend.bootstrap import build_container
from backend.core.config import Settings
from backend.services.outbox import OutboxRelay


async def test_the_backlog_watcher_finishes_its_query_and_returns_when_closed(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = OutboxRelay.backlog
    started, release = asyncio.Event(), asyncio.Event()
    finished: list[tuple[int, float]] = []

    async def slow_backlog(*args: Any) -> tuple[int, float]:
        started.set()
        await release.wait()  # the statement is "in flight" while aclose() begins
        result = await real(*args)
        finished.append(result)
        return result

    monkeypatch.setattr(OutboxRelay, "backlog", slow_backlog)
    container = await build_container(settings)
    container.spawn(
        container.watch_outbox_backlog(interval=3600), name="watcher", returns_when_stopping=True
    )
    watcher = container._background[-1]
    await started.wait()

    closing = asyncio.create_task(container.aclose())
    await asyncio.sleep(0.05)
    assert not closing.done()  # aclose() waits for the statement...
    release.set()
    await closing

    assert finished == [(0, 0.0)]  # ...which ran to its end
    assert watcher.done() and not watcher.cancelled()  # and the loop returned by itself


async def test_loops_that_do_not_watch_for_the_stop_are_cancelled(settings: Settings) -> None:
    container = await build_container(settings)
    container.spawn(asyncio.sleep(3600), name="sleeper")
    sleeper = container._background[-1]

    await container.aclose()

    assert sleeper.cancelled()
