"""Optimistic concurrency: every versioned entity (product, order) counts its edits, and a
write may be conditional on the version the client last saw (`If-Match`)."""

from __future__ import annotations

from collections.abc import Collection

# The version the client last saw, or any of several; None = no condition.
ExpectedVersion = int | Collection[int] | None


def version_allowed(expected: ExpectedVersion, actual: int) -> bool:
    if expected is None:
        return True
    return actual == expected if isinstance(expected, int) else actual in expected
