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
