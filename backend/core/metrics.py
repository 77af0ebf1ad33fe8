"""Business metrics, defined once. Each area adds its series in its own block below.

Gauges declare a multiprocess mode so /metrics stays correct under several uvicorn
worker processes (PROMETHEUS_MULTIPROC_DIR).
"""

from __future__ import annotations

from prometheus_client import Counter

# --- foundation -------------------------------------------------------------
DEPENDENCY_ERRORS = Counter(
    "dependency_errors_total", "Failures reaching a backing service", ["dependency"]
)

# --- identity ---------------------------------------------------------------
AUTH_EVENTS = Counter(
    "auth_events_total",
    "Authentication events by outcome (login, token, refresh, logout, register, password)",
    ["event", "outcome"],
)

# --- rate limiting ----------------------------------------------------------
RATE_LIMITED_REQUESTS = Counter(
    "rate_limited_requests", "Requests refused with 429, by the policy that refused", ["policy"]
)
RATE_LIMIT_STORAGE_ERRORS = Counter(
    "rate_limit_storage_errors",
    "Requests let through unchecked because the rate-limit storage (Redis) failed",
)

# --- catalogue: tiered cache ------------------------------------------------
CACHE_REQUESTS = Counter(
    "cache_requests_total",
    "Cache lookups by namespace, tier (l1, l2) and result (hit, miss, error)",
    ["namespace", "tier", "result"],
)
CACHE_REDIS_ERRORS = Counter(
    "cache_redis_errors_total",
    "Redis failures the cache degraded around (served from L1 or the database)",
    ["operation"],
)
