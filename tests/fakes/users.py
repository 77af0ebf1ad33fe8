"""In-memory users, refresh tokens and a transparent password hasher for service tests.

The repositories follow the transactional-fake protocol of tests/fakes/uow.py
(`_begin/_commit/_rollback`): what a unit of work did not commit is rolled back.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from backend.domain.users import (
    PASSWORD_MAX_BYTES,
    EmailTaken,
    RefreshToken,
    Role,
    User,
    UserPage,
)


class _Transactional:
    def __init__(self) -> None:
        self._snapshot: dict[str, object] | None = None

    def _state(self) -> dict[str, object]:
        raise NotImplementedError

    def _begin(self) -> None:
        self._snapshot = copy.deepcopy(self._state())

    def _commit(self) -> None:
        self._snapshot = None

    def _rollback(self) -> None:
        if self._snapshot is not None:
            state = self._state()
            state.clear()
            state.update(self._snapshot)
        self._snapshot = None


class FakeUserRepository(_Transactional):
    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, User] = {}

    def _state(self) -> dict[str, object]:
        return self.rows  # type: ignore[return-value]

    async def add(self, user: User) -> None:
        if any(u.email == user.email for u in self.rows.values()):
            raise EmailTaken()
        self.rows[user.id] = replace(user)

    async def get(self, user_id: str) -> User | None:
        user = self.rows.get(user_id)
        return replace(user) if user else None

    async def get_many(self, user_ids: Sequence[str]) -> dict[str, User]:
        return {i: replace(self.rows[i]) for i in user_ids if i in self.rows}

    async def get_by_email(self, email: str) -> User | None:
        for user in self.rows.values():
            if user.email == email:
                return replace(user)
        return None

    async def update(self, user: User) -> None:
        if user.id in self.rows:
            self.rows[user.id] = replace(user)

    async def search(
        self, query: str | None, *, limit: int, offset: int, sort: str = "-created_at"
    ) -> UserPage:
        needle = (query or "").lower()
        found = [
            u
            for u in self.rows.values()
            if needle in u.email or needle in (u.full_name or "").lower()
        ]
        key = sort.removeprefix("-")
        found.sort(key=lambda u: (getattr(u, key), u.id), reverse=sort.startswith("-"))
        return UserPage(
            items=[replace(u) for u in found[offset : offset + limit]], total=len(found)
        )

    async def any_admin(self) -> bool:
        return any(u.role is Role.ADMIN for u in self.rows.values())


class FakeRefreshTokenRepository(_Transactional):
    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, RefreshToken] = {}

    def _state(self) -> dict[str, object]:
        return self.rows  # type: ignore[return-value]

    async def add(self, token: RefreshToken) -> None:
        self.rows[token.id] = replace(token)

    async def get_by_hash(self, token_hash: str) -> RefreshToken | None:
        for token in self.rows.values():
            if token.token_hash == token_hash:
                return replace(token)
        return None

    async def mark_spent(self, token_id: str, at: datetime, replaced_by: str) -> bool:
        token = self.rows.get(token_id)
        if token is None or token.spent_at is not None or token.revoked_at is not None:
            return False
        self.rows[token_id] = replace(token, spent_at=at, replaced_by=replaced_by)
        return True

    async def revoke_family(self, family_id: str, at: datetime) -> int:
        return self._revoke(lambda t: t.family_id == family_id, at)

    async def revoke_all_for_user(self, user_id: str, at: datetime) -> int:
        return self._revoke(lambda t: t.user_id == user_id, at)

    async def purge(self, expired_before: datetime, limit: int) -> int:
        expired = sorted(
            (t for t in self.rows.values() if t.expires_at < expired_before),
            key=lambda t: t.expires_at,
        )[:limit]
        for token in expired:
            del self.rows[token.id]
        return len(expired)

    def _revoke(self, match: object, at: datetime) -> int:
        count = 0
        for token_id, token in list(self.rows.items()):
            if match(token) and token.revoked_at is None:  # type: ignore[operator]
                self.rows[token_id] = replace(token, revoked_at=at)
                count += 1
        return count


class FakePasswordHasher:
    """`hash(p) = "fake$" + p`; records every verification (None = the dummy hash)."""

    def __init__(self) -> None:
        self.verified: list[str | None] = []

    async def hash(self, password: str) -> str:
        assert len(password.encode()) <= PASSWORD_MAX_BYTES
        return f"fake${password}"

    async def verify(self, password: str, password_hash: str | None) -> bool:
        self.verified.append(password_hash)
        return password_hash is not None and password_hash == f"fake${password}"
