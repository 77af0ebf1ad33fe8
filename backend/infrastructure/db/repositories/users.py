"""SQL repositories of users and refresh tokens."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from backend.domain.users import EmailTaken, RefreshToken, Role, User, UserPage
from backend.infrastructure.db.repositories.base import SqlRepository
from backend.infrastructure.db.tables import refresh_tokens, users

SORTABLE = {"created_at": users.c.created_at, "email": users.c.email}


def _user(row: Any) -> User:
    return User(
        id=row["id"],
        email=row["email"],
        full_name=row["full_name"],
        role=Role(row["role"]),
        is_active=bool(row["is_active"]),
        password_hash=row["password_hash"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _token(row: Any) -> RefreshToken:
    return RefreshToken(
        id=row["id"],
        user_id=row["user_id"],
        family_id=row["family_id"],
        token_hash=row["token_hash"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        spent_at=row["spent_at"],
        revoked_at=row["revoked_at"],
        replaced_by=row["replaced_by"],
    )


def _like_pattern(query: str) -> str:
    escaped = query.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class SqlUserRepository(SqlRepository):
    async def add(self, user: User) -> None:
        try:
            await self._conn.execute(
                insert(users).values(
                    id=user.id,
                    email=user.email,
                    full_name=user.full_name,
                    role=user.role.value,
                    is_active=user.is_active,
                    password_hash=user.password_hash,
                    created_at=user.created_at,
                    updated_at=user.updated_at,
                )
            )
        except IntegrityError as error:
            # The unique email index is the last word when two registrations race.
            raise EmailTaken() from error

    async def get(self, user_id: str) -> User | None:
        row = (
            (await self._conn.execute(select(users).where(users.c.id == user_id)))
            .mappings()
            .first()
        )
        return _user(row) if row else None

    async def get_many(self, user_ids: Sequence[str]) -> dict[str, User]:
        if not user_ids:
            return {}
        rows = await self._conn.execute(select(users).where(users.c.id.in_(set(user_ids))))
        return {str(row["id"]): _user(row) for row in rows.mappings()}

    async def get_by_email(self, email: str) -> User | None:
        row = (
            (await self._conn.execute(select(users).where(users.c.email == email)))
            .mappings()
            .first()
        )
        return _user(row) if row else None

    async def update(self, user: User) -> None:
        await self._conn.execute(
            update(users)
            .where(users.c.id == user.id)
            .values(
                full_name=user.full_name,
                role=user.role.value,
                is_active=user.is_active,
                password_hash=user.password_hash,
                updated_at=user.updated_at,
            )
        )

    async def search(
        self, query: str | None, *, limit: int, offset: int, sort: str = "-created_at"
    ) -> UserPage:
        condition: Any = None
        if query:
            pattern = _like_pattern(query)
            condition = or_(
                users.c.email.like(pattern, escape="\\"),
                func.lower(users.c.full_name).like(pattern, escape="\\"),
            )
        column = SORTABLE[sort.removeprefix("-")]
        order = column.desc() if sort.startswith("-") else column.asc()
        page = select(users).order_by(order, users.c.id).limit(limit).offset(offset)
        count = select(func.count()).select_from(users)
        if condition is not None:
            page, count = page.where(condition), count.where(condition)
        rows = (await self._conn.execute(page)).mappings().all()
        total = (await self._conn.execute(count)).scalar_one()
        return UserPage(items=[_user(row) for row in rows], total=int(total))

    async def any_admin(self) -> bool:
        found = await self._conn.execute(
            select(users.c.id).where(users.c.role == Role.ADMIN.value).limit(1)
        )
        return found.first() is not None


class SqlRefreshTokenRepository(SqlRepository):
    async def add(self, token: RefreshToken) -> None:
        await self._conn.execute(
            insert(refresh_tokens).values(
                id=token.id,
                user_id=token.user_id,
                family_id=token.family_id,
                token_hash=token.token_hash,
                created_at=token.created_at,
                expires_at=token.expires_at,
                spent_at=token.spent_at,
                revoked_at=token.revoked_at,
                replaced_by=token.replaced_by,
            )
        )

    async def get_by_hash(self, token_hash: str) -> RefreshToken | None:
        row = (
            (
                await self._conn.execute(
                    select(refresh_tokens).where(refresh_tokens.c.token_hash == token_hash)
                )
            )
            .mappings()
            .first()
        )
        return _token(row) if row else None

    async def mark_spent(self, token_id: str, at: datetime, replaced_by: str) -> bool:
        # Compare-and-set: of concurrent refreshes with one token, only one matches the row.
        result = await self._conn.execute(
            update(refresh_tokens)
            .where(
                refresh_tokens.c.id == token_id,
                refresh_tokens.c.spent_at.is_(None),
                refresh_tokens.c.revoked_at.is_(None),
            )
            .values(spent_at=at, replaced_by=replaced_by)
        )
        return bool(result.rowcount == 1)

    async def revoke_family(self, family_id: str, at: datetime) -> int:
        result = await self._conn.execute(
            update(refresh_tokens)
            .where(refresh_tokens.c.family_id == family_id, refresh_tokens.c.revoked_at.is_(None))
            .values(revoked_at=at)
        )
        return int(result.rowcount)

    async def revoke_all_for_user(self, user_id: str, at: datetime) -> int:
        result = await self._conn.execute(
            update(refresh_tokens)
            .where(refresh_tokens.c.user_id == user_id, refresh_tokens.c.revoked_at.is_(None))
            .values(revoked_at=at)
        )
        return int(result.rowcount)

    async def purge(self, expired_before: datetime, limit: int) -> int:
        ids = await self.oldest_ids(
            refresh_tokens, refresh_tokens.c.expires_at, expired_before, limit
        )
        if not ids:
            return 0
        result = await self._conn.execute(
            delete(refresh_tokens).where(refresh_tokens.c.id.in_(ids))
        )
        return int(result.rowcount)
