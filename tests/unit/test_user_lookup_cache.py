"""Access-token user lookups through the cache: served from it, and dropped from it by every
write to the user, so that deactivation (and any other change) bites on the next request."""

from __future__ import annotations

import pytest

from backend.domain.users import USERS_NS, Role, TokenInvalid
from backend.infrastructure.security.lockout import MemoryLoginAttempts
from backend.infrastructure.security.tokens import JoseTokenIssuer
from backend.services.auth import AuthPolicy, AuthService
from backend.services.users import UserService
from tests.fakes.catalog import RecordingCache
from tests.fakes.uow import FakeUnitOfWorkFactory
from tests.fakes.users import FakePasswordHasher
from tests.unit.test_auth_service import PASSWORD, SECRET, manual_clock


class Env:
    def __init__(self) -> None:
        self.db = FakeUnitOfWorkFactory()
        self.cache = RecordingCache()
        clock = manual_clock()
        self.tokens = JoseTokenIssuer(SECRET, 900, clock)
        attempts = MemoryLoginAttempts(5, 900, 900, timer=lambda: 0.0)
        self.auth = AuthService(
            self.db,
            FakePasswordHasher(),
            self.tokens,
            attempts,
            clock,
            AuthPolicy(3600),
            self.cache,
        )
        self.users = UserService(self.db, clock, self.cache)


@pytest.fixture
def env() -> Env:
    return Env()


async def logged_in(env: Env, email: str = "ada@example.com") -> tuple[str, str]:
    """(user id, access token), the token already looked up once (so cached)."""
    user = await env.auth.register(email, PASSWORD)
    token = (await env.auth.login(email, PASSWORD)).access_token
    assert (await env.auth.user_for_access_token(token)).id == user.id
    return user.id, token


async def test_a_lookup_after_the_first_is_served_from_the_cache(env: Env) -> None:
    user_id, token = await logged_in(env)
    # A change that bypasses the services (so nothing invalidates) is not seen: the cache
    # answered, not the database.
    env.db.users.rows[user_id].full_name = "changed behind the services' back"
    assert (await env.auth.user_for_access_token(token)).full_name is None
    assert env.cache.values[(USERS_NS, user_id)].id == user_id


async def test_deactivation_drops_the_cached_user_and_the_token_stops_working_at_once(
    env: Env,
) -> None:
    user_id, token = await logged_in(env)
    admin_id, _ = await logged_in(env, "root@example.com")
    admin = env.db.users.rows[admin_id]
    admin.role = Role.ADMIN
    await env.users.administer(admin, user_id, is_active=False)
    assert (USERS_NS, user_id) in env.cache.invalidated
    with pytest.raises(TokenInvalid):
        await env.auth.user_for_access_token(token)


async def test_a_role_change_is_seen_by_the_next_request(env: Env) -> None:
    user_id, token = await logged_in(env)
    admin_id, _ = await logged_in(env, "root@example.com")
    env.db.users.rows[admin_id].role = Role.ADMIN
    await env.users.administer(env.db.users.rows[admin_id], user_id, role=Role.ADMIN)
    assert (await env.auth.user_for_access_token(token)).role is Role.ADMIN


async def test_a_profile_change_and_a_password_change_drop_the_cached_user(env: Env) -> None:
    user_id, token = await logged_in(env)
    await env.users.update_profile(user_id, "Ada Lovelace")
    assert (await env.auth.user_for_access_token(token)).full_name == "Ada Lovelace"
    env.cache.invalidated.clear()
    await env.auth.change_password(user_id, PASSWORD, "another-horse-9")
    assert env.cache.invalidated == [(USERS_NS, user_id)]


async def test_an_unknown_user_is_not_cached(env: Env) -> None:
    user_id, token = await logged_in(env)
    del env.db.users.rows[user_id]
    await env.cache.invalidate(USERS_NS, user_id)
    for _ in range(2):
        with pytest.raises(TokenInvalid):
            await env.auth.user_for_access_token(token)
    assert (USERS_NS, user_id) not in env.cache.values
