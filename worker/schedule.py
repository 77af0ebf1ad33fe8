"""Celery Beat schedule. Intervals come from settings (seconds in tests, minutes in production)."""

from __future__ import annotations

from typing import Any

from backend.core.config import Settings


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    return {
        "heartbeat": {
            "task": "orderflow.heartbeat",
            "schedule": settings.heartbeat_interval,
            "options": {"expires": settings.heartbeat_interval},
        },
    }
