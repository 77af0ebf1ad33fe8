"""The bcrypt adapter: correct answers, the 72-byte limit, the dummy hash, a free event loop."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import AsyncIterator

import bcrypt
import pytest

from backend.infrastructure.security.passwords import (
    HASHING_NICENESS,
    BcryptHasher,
    hashing_threads,
)


@pytest.fixture
async def hasher() -> AsyncIterator[BcryptHasher]:
    h = BcryptHasher(rounds=4)
    yield h
    h.close()


async def test_hash_and_verify(hasher: BcryptHasher) -> None:
    hashed = await hasher.hash("correct-horse-9")
    assert hashed.startswith("$2b$04$")
    assert await hasher.verify("correct-horse-9", hashed)
    assert not await hasher.verify("correct-horse-8", hashed)
    assert await hasher.hash("correct-horse-9") != hashed  # salted


async def test_multibyte_passwords_up_to_72_bytes(hasher: BcryptHasher) -> None:
    exactly_72 = "é" * 36  # 2 bytes each
    hashed = await hasher.hash(exactly_72)
    assert await hasher.verify(exactly_72, hashed)
    with pytest.raises(ValueError, match="72 bytes"):
        await hasher.hash(exactly_72 + "a")
    # Never truncated: a longer password with the same 72-byte prefix does not match.
    assert not await hasher.verify(exactly_72 + "a", hashed)


async def test_unknown_accounts_verify_against_a_dummy_hash_at_the_same_cost() -> None:
    hasher = BcryptHasher(rounds=5)
    try:
        assert not await hasher.verify("correct-horse-9", None)
        dummy = hasher._dummy_hash
        assert dummy is not None and dummy.startswith(b"$2b$05$")
        await hasher.warm_up()
        assert hasher._dummy_hash is dummy  # computed once
    finally:
        hasher.close()


async def test_a_corrupt_stored_hash_is_a_failed_verification(hasher: BcryptHasher) -> None:
    assert not await hasher.verify("correct-horse-9", "not-a-bcrypt-hash")


async def test_hashing_runs_off_the_event_loop() -> None:
    hasher = BcryptHasher(rounds=12)
    ticks = 0
    hashing = asyncio.ensure_future(hasher.hash("correct-horse-9"))

    async def tick() -> None:
        nonlocal ticks
        while not hashing.done():
            ticks += 1
            await asyncio.sleep(0.005)

    try:
        await asyncio.gather(hashing, tick())
    finally:
        hasher.close()
    # A cost-12 hash takes a few hundred ms; had it run on the loop, tick() could not run
    # until it finished, and would count exactly once.
    assert ticks > 1
    assert bcrypt.checkpw(b"correct-horse-9", hashing.result().encode())


def _own_niceness() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@pytest.mark.skipif(sys.platform != "linux", reason="niceness is per thread on Linux only")
async def test_hashing_threads_run_at_a_lower_priority_than_the_event_loop(
    hasher: BcryptHasher,
) -> None:
    loop = asyncio.get_running_loop()
    in_pool = await loop.run_in_executor(hasher._pool, _own_niceness)
    assert in_pool == min(19, _own_niceness() + HASHING_NICENESS)
    assert _own_niceness() < in_pool  # the loop's thread is left as it was


@pytest.mark.parametrize(("cores", "threads"), [({0}, 1), ({0, 1}, 1), (set(range(8)), 7)])
def test_hashing_leaves_a_core_to_the_event_loop(
    monkeypatch: pytest.MonkeyPatch, cores: set[int], threads: int
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: cores, raising=False)
    assert hashing_threads() == threads
    hasher = BcryptHasher(4)
    try:
        assert hasher._pool._max_workers == threads
    finally:
        hasher.close()
