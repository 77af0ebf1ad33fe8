"""Orders, lines, history and idempotency keys. (Filled in by the orders issue.)"""

from __future__ import annotations

from typing import Protocol


class OrderRepository(Protocol):
    """Persistence of orders; transitions are compare-and-set updates."""


class IdempotencyRepository(Protocol):
    """Idempotency keys of order creation, written in the order's transaction."""
