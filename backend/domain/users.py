"""Users and refresh tokens: entities, rules, errors and the ports identity depends on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from backend.domain.errors import (
    Conflict,
    DomainError,
    ErrorKind,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    RateLimited,
)

PASSWORD_MIN_CHARS = 8
PASSWORD_MAX_BYTES = 72  # bcrypt ignores (or, since bcrypt 5, refuses) anything longer
# The cache namespace of the users access tokens name (briefly cached, invalidated on every
# write to a user: docs/adr/0019).
USERS_NS = "users"


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


@dataclass(slots=True)
class RefreshToken:
    """One refresh token of a family (one login). Only the hash of the token is stored."""

    id: str
    user_id: str
    family_id: str
    token_hash: str
    created_at: datetime
    expires_at: datetime
    spent_at: datetime | None = None
    revoked_at: datetime | None = None
    replaced_by: str | None = None

    def is_usable(self, now: datetime) -> bool:
        return self.spent_at is None and self.revoked_at is None and now < self.expires_at


@dataclass(frozen=True, slots=True)
class AccessClaims:
    """The verified claims of an access token."""

    sub: str
    jti: str
    iat: datetime
    exp: datetime
    type: str = "access"


@dataclass(frozen=True, slots=True)
class IssuedAccessToken:
    token: str
    expires_in: int
    jti: str


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    user_id: str
    token_type: str = "bearer"  # noqa: S105 - a scheme name, not a secret


@dataclass(frozen=True, slots=True)
class UserPage:
    items: Sequence[User]
    total: int


# --------------------------------------------------------------------------- rules
def normalise_email(email: str) -> str:
    return email.strip().lower()


def password_problems(password: str) -> list[str]:
    """Why a new password is refused (empty when acceptable)."""
    problems = []
    if len(password) < PASSWORD_MIN_CHARS:
        problems.append(f"must be at least {PASSWORD_MIN_CHARS} characters")
    if len(password.encode("utf-8")) > PASSWORD_MAX_BYTES:
        problems.append(f"must be at most {PASSWORD_MAX_BYTES} bytes in UTF-8")
    return problems


def check_new_password(password: str, field: str = "password") -> None:
    problems = password_problems(password)
    if problems:
        raise InvalidPassword(
            f"The password {' and '.join(problems)}.",
            errors=[
                {"loc": [field], "msg": f"Password {problem}", "type": "password_policy"}
                for problem in problems
            ],
        )


# --------------------------------------------------------------------------- errors
class EmailTaken(Conflict):
    slug = "email-taken"
    title = "Email already registered"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail or "An account with this email already exists.", **extra)


class InvalidPassword(InvalidInput):
    pass


class InvalidCredentials(NotAuthenticated):
    """Wrong password, unknown email or inactive account: deliberately one answer."""

    slug = "invalid-credentials"
    title = "Invalid credentials"

    def __init__(self) -> None:
        super().__init__("Incorrect email or password.")


class TokenInvalid(NotAuthenticated):
    """An access or refresh token that is malformed, expired, revoked or not for a live user."""

    slug = "invalid-token"
    title = "Invalid token"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail or "The token is invalid, expired or revoked.")


class RefreshTokenReused(TokenInvalid):
    """A spent refresh token came back: treated as theft, its family is revoked."""


class AccountLocked(RateLimited):
    slug = "login-locked"
    title = "Too many failed logins"

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            "Too many failed logins for this email; try again later.", retry_after=retry_after
        )


class WrongPassword(DomainError):
    kind = ErrorKind.BAD_REQUEST
    slug = "wrong-password"
    title = "Wrong current password"

    def __init__(self) -> None:
        super().__init__("The current password is not correct.")


class UserNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("No such user.")


class SelfLockout(Conflict):
    slug = "self-lockout"
    title = "Cannot lock yourself out"

    def __init__(self) -> None:
        super().__init__("Administrators cannot deactivate or demote their own account.")


# --------------------------------------------------------------------------- ports
class UserRepository(Protocol):
    async def add(self, user: User) -> None:
        """Insert; raises `EmailTaken` when the (normalised) email exists."""
        ...

    async def get(self, user_id: str) -> User | None: ...

    async def get_many(self, user_ids: Sequence[str]) -> dict[str, User]:
        """The users that exist among `user_ids`, by id."""
        ...

    async def get_by_email(self, email: str) -> User | None:
        """`email` must already be normalised."""
        ...

    async def update(self, user: User) -> None:
        """Write every mutable field (full_name, role, is_active, password_hash, updated_at)."""
        ...

    async def search(
        self, query: str | None, *, limit: int, offset: int, sort: str = "-created_at"
    ) -> UserPage:
        """Users whose email or name contains `query` (case-insensitive), a page and the total.

        `sort` is one of `created_at`, `email`, optionally prefixed by `-` (descending)."""
        ...

    async def any_admin(self) -> bool: ...


class RefreshTokenRepository(Protocol):
    async def add(self, token: RefreshToken) -> None: ...

    async def get_by_hash(self, token_hash: str) -> RefreshToken | None: ...

    async def mark_spent(self, token_id: str, at: datetime, replaced_by: str) -> bool:
        """Compare-and-set: `UPDATE ... WHERE id = :id AND spent_at IS NULL AND revoked_at IS
        NULL`. True for exactly one of any number of concurrent callers."""
        ...

    async def revoke_family(self, family_id: str, at: datetime) -> int: ...

    async def revoke_all_for_user(self, user_id: str, at: datetime) -> int: ...

    async def purge(self, expired_before: datetime, limit: int) -> int:
        """Delete up to `limit` tokens that expired before `expired_before` (spent, revoked
        or not: an expired token is refused anyway, while a spent one that has not expired
        must stay to detect its reuse); the number deleted. (Workers' purge job.)"""
        ...


class PasswordHasher(Protocol):
    """Slow hashing; implementations never block the event loop."""

    async def hash(self, password: str) -> str: ...

    async def verify(self, password: str, password_hash: str | None) -> bool:
        """`password_hash=None` verifies against a dummy hash (same cost) and returns False."""
        ...


class TokenIssuer(Protocol):
    def issue_access(self, user_id: str) -> IssuedAccessToken: ...

    def decode_access(self, token: str) -> AccessClaims:
        """Verified claims of an access token; raises `TokenInvalid` for anything else."""
        ...

    def new_refresh_token(self) -> str:
        """A fresh opaque refresh token (256 random bits)."""
        ...

    def hash_refresh_token(self, token: str) -> str: ...


class LoginAttempts(Protocol):
    """Per-key (normalised email) failed-login bookkeeping for the lockout."""

    async def locked_for(self, key: str) -> int:
        """Seconds the key stays locked (0 when not locked)."""
        ...

    async def record_failure(self, key: str) -> int:
        """Count a failure; seconds locked if this failure locked the key, else 0."""
        ...

    async def reset(self, key: str) -> None: ...
