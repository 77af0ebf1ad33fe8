"""bcrypt, always off the event loop, in a small pool of its own."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor

import bcrypt

from backend.domain.users import PASSWORD_MAX_BYTES

# How much lower the hashing threads' scheduling priority is than the event loop's (niceness).
HASHING_NICENESS = 10


def _yield_to_the_loop() -> None:
    """Lower the calling (hashing) thread's priority, on Linux where niceness is per thread.

    Releasing the GIL is not enough when the hashing threads and the event loop share a core
    (one core, a CPU quota, or more logins than cores): the scheduler then gives each runnable
    thread an equal slice, and a burst of logins multiplies every other request's latency. At
    niceness 10 a hashing thread gets about a tenth of the CPU the loop gets while both want
    it, and all of an idle core."""
    with contextlib.suppress(AttributeError, OSError):  # not Linux, or not permitted
        thread = threading.get_native_id()
        niceness = os.getpriority(os.PRIO_PROCESS, thread)  # inherited from the process
        os.setpriority(os.PRIO_PROCESS, thread, min(19, niceness + HASHING_NICENESS))


def hashing_threads() -> int:
    """One fewer than the cores this process may run on, at least one: however many logins
    arrive at once, a core's worth of CPU is left to the event loop (docs/adr/0019). The
    cores are those of the process's CPU affinity (a pinned or `taskset` process has fewer
    than the machine)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, cores - 1)


class BcryptHasher:
    """`PasswordHasher` on bcrypt. Hashing runs in a dedicated thread pool, one thread fewer
    than the process has cores, at a lower priority: bcrypt releases the GIL, so the loop
    keeps serving, a login burst cannot starve the default executor that other code (DNS
    lookups, `to_thread`) shares nor take every core, and the loop comes first when both want
    the same core. Logins beyond the pool's threads wait for one."""

    def __init__(self, rounds: int, max_threads: int | None = None) -> None:
        self.rounds = rounds
        self._pool = ThreadPoolExecutor(
            max_workers=max_threads or hashing_threads(),
            thread_name_prefix="bcrypt",
            initializer=_yield_to_the_loop,
        )
        self._dummy_hash: bytes | None = None

    async def _run(self, fn: object, *args: bytes) -> object:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, fn, *args)  # type: ignore[arg-type]

    async def hash(self, password: str) -> str:
        secret = password.encode("utf-8")
        if len(secret) > PASSWORD_MAX_BYTES:
            # Never truncate silently; the API refuses these with a 422 before we get here.
            raise ValueError(f"password longer than {PASSWORD_MAX_BYTES} bytes")
        salt = bcrypt.gensalt(rounds=self.rounds)
        hashed = await self._run(bcrypt.hashpw, secret, salt)
        assert isinstance(hashed, bytes)
        return hashed.decode("ascii")

    async def _dummy(self) -> bytes:
        if self._dummy_hash is None:
            # A hash of a random secret at the configured cost: verifying against it costs
            # what a real verification costs, so unknown emails are not faster.
            random_secret = secrets.token_bytes(32)
            salt = bcrypt.gensalt(rounds=self.rounds)
            hashed = await self._run(bcrypt.hashpw, random_secret, salt)
            assert isinstance(hashed, bytes)
            self._dummy_hash = hashed
        return self._dummy_hash

    async def verify(self, password: str, password_hash: str | None) -> bool:
        secret = password.encode("utf-8")
        if len(secret) > PASSWORD_MAX_BYTES:
            secret = b""  # cannot match any stored hash; still pay the same cost below
        target = password_hash.encode("ascii") if password_hash else await self._dummy()
        try:
            matched = await self._run(bcrypt.checkpw, secret, target)
        except ValueError:  # a corrupt stored hash is a failed login, not a crash
            return False
        return bool(matched) and password_hash is not None and len(secret) > 0

    async def warm_up(self) -> None:
        """Compute the dummy hash now, so the first unknown-email login is not the slow one."""
        await self._dummy()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
