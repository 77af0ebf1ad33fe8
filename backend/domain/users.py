"""Users and refresh tokens. (Filled in by the identity issue.)"""

from __future__ import annotations

from typing import Protocol


class UserRepository(Protocol):
    """Persistence of users."""


class RefreshTokenRepository(Protocol):
    """Persistence of refresh-token families."""
