"""Security adapters: bcrypt password hashing, JWT access tokens, refresh tokens, lockout."""

from __future__ import annotations

from redis.asyncio import Redis

from backend.core.config import Settings
from backend.infrastructure.security.lockout import (
    FallbackLoginAttempts,
    MemoryLoginAttempts,
    RedisLoginAttempts,
)


def build_login_attempts(
    settings: Settings, redis: Redis | None
) -> MemoryLoginAttempts | FallbackLoginAttempts:
    """Redis when configured (shared by every instance), else process memory (ADR 0007)."""
    window = lockout = settings.login_lockout_seconds
    memory = MemoryLoginAttempts(settings.login_max_failures, window, lockout)
    if redis is None:
        return memory
    shared = RedisLoginAttempts(
        redis, settings.redis_key_prefix, settings.login_max_failures, window, lockout
    )
    return FallbackLoginAttempts(shared, memory)
