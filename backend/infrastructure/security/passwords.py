"""bcrypt, always off the event loop, in a small pool of its own."""

from __future__ import annotations

import asyncio
import os
import secrets
from concurrent.futures import ThreadPoolExecutor

import bcrypt

from backend.domain.users import PASSWORD_MAX_BYTES


class BcryptHasher:
    """`PasswordHasher` on bcrypt. Hashing runs in a dedicated thread pool: bcrypt releases
    the GIL, so the loop keeps serving, and a login burst cannot starve the default
    executor that other code (DNS lookups, `to_thread`) shares."""

    def __init__(self, rounds: int, max_threads: int | None = None) -> None:
        self.rounds = rounds
        self._pool = ThreadPoolExecutor(
            max_workers=max_threads or max(2, os.cpu_count() or 2),
            thread_name_prefix="bcrypt",
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
