"""Waiting for something that happens asynchronously, with a deadline instead of a sleep."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 1.0) -> None:
    """Poll `check` until it holds; fail if it still does not after `within` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await check():
        assert loop.time() < deadline, f"still not true after {within}s"
        await asyncio.sleep(0.02)


def wait_until(check: Callable[[], bool], within: float, diagnosis: Callable[[], str]) -> None:
    """The same for blocking code: poll `check`; on timeout fail with `diagnosis()`."""
    import time

    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"still not true after {within}s:\n{diagnosis()}")
        time.sleep(0.25)
