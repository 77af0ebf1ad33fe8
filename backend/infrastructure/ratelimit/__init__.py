"""Rate limiting on the `limits` library: sliding-window counters in Redis (full mode) or in
process memory (embedded mode). See docs/adr/0011-rate-limiting.md."""

from backend.infrastructure.ratelimit.limiter import (
    Decision,
    Policy,
    RateLimiter,
    build_rate_limiter,
)

__all__ = ["Decision", "Policy", "RateLimiter", "build_rate_limiter"]
