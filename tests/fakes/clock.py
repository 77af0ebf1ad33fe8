"""The fake `Clock`: tests move it by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class SteppingClock:
    """Each reading is `step` later than the previous one (one microsecond by default, so
    two readings never tie); `step=timedelta(0)` stands still until `advance`."""

    def __init__(
        self, start: datetime | None = None, *, step: timedelta = timedelta(microseconds=1)
    ) -> None:
        self.current = start or datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
        self.step = step

    def now(self) -> datetime:
        self.current += self.step
        return self.current

    def advance(self, seconds: float = 0, **delta: float) -> None:
        self.current += timedelta(seconds=seconds, **delta)
