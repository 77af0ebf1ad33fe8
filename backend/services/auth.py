"""Identity use cases: register, log in, refresh, log out, change password, first admin.

Slow password work (bcrypt) always happens OUTSIDE a unit of work: on SQLite a
transaction holds the single write lock, and on PostgreSQL a pooled connection.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import NoReturn

from backend.domain.catalog import Cache
from backend.domain.ports import Clock, UnitOfWork, UnitOfWorkFactory
from backend.domain.users import (
    USERS_NS,
    AccountLocked,
    EmailTaken,
    InvalidCredentials,
    LoginAttempts,
    PasswordHasher,
    RefreshToken,
    RefreshTokenReused,
    Role,
    TokenInvalid,
    TokenIssuer,
    TokenPair,
    User,
    WrongPassword,
    check_new_password,
    normalise_email,
)


@dataclass(frozen=True, slots=True)
class AuthPolicy:
    refresh_ttl_seconds: int


@dataclass(frozen=True, slots=True)
class AdminProvisioning:
    user: User
    outcome: str  # "created" | "promoted" | "unchanged" | "refused"


class AuthService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        hasher: PasswordHasher,
        tokens: TokenIssuer,
        attempts: LoginAttempts,
        clock: Clock,
        policy: AuthPolicy,
        cache: Cache | None = None,
    ) -> None:
        """`cache`: where access-token lookups of users are kept briefly (None: read every
        time); every write to a user here invalidates it."""
        self._uow = uow
        self._hasher = hasher
        self._tokens = tokens
        self._attempts = attempts
        self._clock = clock
        self._policy = policy
        self._cache = cache

    # ------------------------------------------------------------------ registration
    async def register(
        self, email: str, password: str, full_name: str | None = None, role: Role = Role.CUSTOMER
    ) -> User:
        email = normalise_email(email)
        check_new_password(password)
        async with self._uow() as uow:  # cheap early answer before paying for bcrypt
            if await uow.users.get_by_email(email) is not None:
                raise EmailTaken()
        password_hash = await self._hasher.hash(password)
        now = self._clock.now()
        user = User(
            id=str(uuid.uuid4()),
            email=email,
            full_name=full_name,
            role=role,
            is_active=True,
            password_hash=password_hash,
            created_at=now,
            updated_at=now,
        )
        async with self._uow() as uow:
            await uow.users.add(user)  # the unique index settles a race: EmailTaken
            await uow.commit()
        return user

    # ------------------------------------------------------------------ login
    async def login(self, email: str, password: str) -> TokenPair:
        email = normalise_email(email)
        locked = await self._attempts.locked_for(email)
        if locked:
            raise AccountLocked(retry_after=locked)
        async with self._uow() as uow:
            user = await uow.users.get_by_email(email)
        # Unknown emails verify against a dummy hash: same cost, same answer.
        matched = await self._hasher.verify(password, user.password_hash if user else None)
        if user is None or not matched:
            await self._attempts.record_failure(email)
            raise InvalidCredentials()
        if not user.is_active:
            raise InvalidCredentials()
        await self._attempts.reset(email)
        return await self._start_family(user)

    async def _start_family(self, user: User) -> TokenPair:
        raw, token = self._new_refresh(user.id, family_id=str(uuid.uuid4()))
        async with self._uow() as uow:
            await uow.refresh_tokens.add(token)
            await uow.commit()
        return self._pair(user.id, raw)

    def _new_refresh(self, user_id: str, family_id: str) -> tuple[str, RefreshToken]:
        raw = self._tokens.new_refresh_token()
        now = self._clock.now()
        token = RefreshToken(
            id=str(uuid.uuid4()),
            user_id=user_id,
            family_id=family_id,
            token_hash=self._tokens.hash_refresh_token(raw),
            created_at=now,
            expires_at=now + timedelta(seconds=self._policy.refresh_ttl_seconds),
        )
        return raw, token

    def _pair(self, user_id: str, raw_refresh: str) -> TokenPair:
        access = self._tokens.issue_access(user_id)
        return TokenPair(
            access_token=access.token,
            refresh_token=raw_refresh,
            expires_in=access.expires_in,
            user_id=user_id,
        )

    # ------------------------------------------------------------------ refresh / logout
    async def refresh(self, raw_refresh: str) -> TokenPair:
        token_hash = self._tokens.hash_refresh_token(raw_refresh)
        now = self._clock.now()
        async with self._uow() as uow:
            current = await uow.refresh_tokens.get_by_hash(token_hash)
            if current is None or current.revoked_at is not None:
                raise TokenInvalid()
            if current.spent_at is not None:
                await self._revoke_reused(uow, current.family_id)
            if now >= current.expires_at:
                raise TokenInvalid()
            user = await uow.users.get(current.user_id)
            if user is None or not user.is_active:
                raise TokenInvalid()
            raw, successor = self._new_refresh(user.id, family_id=current.family_id)
            if not await uow.refresh_tokens.mark_spent(current.id, now, successor.id):
                # Another request spent it between our read and our write: the same theft
                # signal as a late reuse, so the same answer.
                await self._revoke_reused(uow, current.family_id)
            await uow.refresh_tokens.add(successor)
            await uow.commit()
        return self._pair(user.id, raw)

    async def _revoke_reused(self, uow: UnitOfWork, family_id: str) -> NoReturn:
        await uow.refresh_tokens.revoke_family(family_id, self._clock.now())
        await uow.commit()  # the revocation must stick although the request fails
        raise RefreshTokenReused("This refresh token was already used; its session is revoked.")

    async def logout(self, raw_refresh: str | None) -> bool:
        """Revoke the token's family. Unknown or absent tokens are fine (idempotent)."""
        if not raw_refresh:
            return False
        token_hash = self._tokens.hash_refresh_token(raw_refresh)
        async with self._uow() as uow:
            token = await uow.refresh_tokens.get_by_hash(token_hash)
            if token is None:
                return False
            await uow.refresh_tokens.revoke_family(token.family_id, self._clock.now())
            await uow.commit()
        return True

    # ------------------------------------------------------------------ access tokens
    async def user_for_access_token(self, token: str) -> User:
        """The live user behind an access token. Kept in the cache for a moment (one round
        trip saved on nearly every request) and dropped from it, in every process, by each
        write to the user: deactivation takes effect at once (docs/adr/0019)."""
        claims = self._tokens.decode_access(token)
        if self._cache is None:
            user = await self._load_user(claims.sub)
        else:
            user = await self._cache.get_or_load(
                USERS_NS, claims.sub, lambda: self._load_user(claims.sub)
            )
        if user is None or not user.is_active:
            raise TokenInvalid()
        return user

    async def _load_user(self, user_id: str) -> User | None:
        async with self._uow().read_only() as uow:
            return await uow.users.get(user_id)

    async def _forget_user(self, user_id: str) -> None:
        if self._cache is not None:
            await self._cache.invalidate(USERS_NS, user_id)

    # ------------------------------------------------------------------ password
    async def change_password(self, user_id: str, current: str, new: str) -> None:
        check_new_password(new, field="new_password")
        async with self._uow() as uow:
            user = await uow.users.get(user_id)
        if user is None or not user.is_active:
            raise TokenInvalid()
        if not await self._hasher.verify(current, user.password_hash):
            raise WrongPassword()
        new_hash = await self._hasher.hash(new)
        now = self._clock.now()
        async with self._uow() as uow:
            await uow.users.update(replace(user, password_hash=new_hash, updated_at=now))
            await uow.refresh_tokens.revoke_all_for_user(user_id, now)
            await uow.commit()
        await self._forget_user(user_id)

    # ------------------------------------------------------------------ administrators
    async def ensure_first_admin(self, email: str, password: str) -> AdminProvisioning:
        """Start-up bootstrap, idempotent. Creates the admin when the email is free; never
        promotes an existing customer (someone could have registered that email first) and
        never overwrites a password."""
        email = normalise_email(email)
        async with self._uow() as uow:
            existing = await uow.users.get_by_email(email)
        if existing is not None:
            return AdminProvisioning(existing, "unchanged" if existing.is_admin else "refused")
        try:
            user = await self.register(email, password, role=Role.ADMIN)
        except EmailTaken:  # another instance won the race at start-up
            async with self._uow() as uow:
                raced = await uow.users.get_by_email(email)
            assert raced is not None
            return AdminProvisioning(raced, "unchanged" if raced.is_admin else "refused")
        return AdminProvisioning(user, "created")

    async def create_admin(self, email: str, password: str) -> AdminProvisioning:
        """The operator's CLI: create the admin, or promote, re-activate and re-password an
        existing account (the operator proved intent by typing its new password)."""
        email = normalise_email(email)
        check_new_password(password)
        async with self._uow() as uow:
            existing = await uow.users.get_by_email(email)
        if existing is None:
            return AdminProvisioning(
                await self.register(email, password, role=Role.ADMIN), "created"
            )
        new_hash = await self._hasher.hash(password)
        now = self._clock.now()
        promoted = replace(
            existing, role=Role.ADMIN, is_active=True, password_hash=new_hash, updated_at=now
        )
        async with self._uow() as uow:
            await uow.users.update(promoted)
            await uow.refresh_tokens.revoke_all_for_user(existing.id, now)
            await uow.commit()
        await self._forget_user(existing.id)
        return AdminProvisioning(promoted, "promoted")
