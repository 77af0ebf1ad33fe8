"""Products and stock. (Filled in by the catalogue issue.)"""

from __future__ import annotations

from typing import Protocol


class ProductRepository(Protocol):
    """Persistence of products; stock changes are conditional updates."""
