"""User profile and user administration use cases."""

from __future__ import annotations

from dataclasses import replace

from backend.domain.catalog import Cache
from backend.domain.ports import Clock, UnitOfWorkFactory
from backend.domain.users import USERS_NS, Role, SelfLockout, User, UserNotFound, UserPage


class UserService:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, cache: Cache | None = None) -> None:
        """`cache`: where access-token lookups keep users (AuthService); every write here
        drops the user from it, in every process."""
        self._uow = uow
        self._clock = clock
        self._cache = cache

    async def _forget(self, user_id: str) -> None:
        if self._cache is not None:
            await self._cache.invalidate(USERS_NS, user_id)

    async def get(self, user_id: str) -> User:
        async with self._uow() as uow:
            user = await uow.users.get(user_id)
        if user is None:
            raise UserNotFound()
        return user

    async def update_profile(self, user_id: str, full_name: str | None) -> User:
        async with self._uow() as uow:
            user = await uow.users.get(user_id)
            if user is None:
                raise UserNotFound()
            updated = replace(user, full_name=full_name, updated_at=self._clock.now())
            await uow.users.update(updated)
            await uow.commit()
        await self._forget(user_id)
        return updated

    async def search(
        self, query: str | None, *, limit: int, offset: int, sort: str = "-created_at"
    ) -> UserPage:
        async with self._uow() as uow:
            return await uow.users.search(query, limit=limit, offset=offset, sort=sort)

    async def administer(
        self,
        actor: User,
        user_id: str,
        *,
        is_active: bool | None = None,
        role: Role | None = None,
    ) -> User:
        """An admin activates/deactivates or changes the role of a user. Deactivating also
        revokes every refresh token; access tokens die with the per-request lookup."""
        if actor.id == user_id and (is_active is False or role is Role.CUSTOMER):
            raise SelfLockout()
        now = self._clock.now()
        async with self._uow() as uow:
            user = await uow.users.get(user_id)
            if user is None:
                raise UserNotFound()
            new_active = user.is_active if is_active is None else is_active
            new_role = user.role if role is None else role
            if (new_active, new_role) == (user.is_active, user.role):
                return user
            updated = replace(user, is_active=new_active, role=new_role, updated_at=now)
            await uow.users.update(updated)
            if not updated.is_active:
                await uow.refresh_tokens.revoke_all_for_user(user.id, now)
            await uow.commit()
        await self._forget(user.id)
        return updated
