"""Users and refresh tokens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol


class Role(StrEnum):
    CUSTOMER = "customer"
    ADMIN = "admin"


@dataclass(slots=True)
class User:
    id: str
    email: str
    full_name: str | None
    role: Role
    is_active: bool
    password_hash: str
    created_at: datetime
    updated_at: datetime

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


class UserRepository(Protocol):
    """Persistence of users. (Methods are added by the identity issue.)"""


class RefreshTokenRepository(Protocol):
    """Persistence of refresh-token families. (Methods are added by the identity issue.)"""
