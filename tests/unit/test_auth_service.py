"""AuthService and UserService on in-memory fakes: the identity rules, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from backend.domain.users import (
    AccountLocked,
    EmailTaken,
    InvalidCredentials,
    InvalidPassword,
    RefreshTokenReused,
    Role,
    SelfLockout,
    TokenInvalid,
    UserNotFound,
    WrongPassword,
)
from backend.infrastructure.security.lockout import MemoryLoginAttempts
from backend.infrastructure.security.tokens import JoseTokenIssuer
from backend.services.auth import AuthPolicy, AuthService
from backend.services.users import UserService
from tests.fakes.clock import SteppingClock
from tests.fakes.uow import FakeUnitOfWorkFactory
from tests.fakes.users import FakePasswordHasher

SECRET = "unit-test-secret-that-is-long-enough-0123456789"
PASSWORD = "correct-horse-9"


def manual_clock() -> SteppingClock:
    # Real "now" (jose checks `exp` against the real clock), standing still until advanced.
    return SteppingClock(datetime.now(UTC).replace(microsecond=0), step=timedelta(0))


class Env:
    def __init__(self) -> None:
        self.db = FakeUnitOfWorkFactory()
        self.clock = manual_clock()
        self.hasher = FakePasswordHasher()
        self.tokens = JoseTokenIssuer(SECRET, 900, self.clock)
        self.monotonic = 1000.0
        self.attempts = MemoryLoginAttempts(5, 900, 900, timer=lambda: self.monotonic)
        self.auth = AuthService(
            self.db, self.hasher, self.tokens, self.attempts, self.clock, AuthPolicy(3600)
        )
        self.users = UserService(self.db, self.clock)


@pytest.fixture
def env() -> Env:
    return Env()


# --------------------------------------------------------------------------- registration
async def test_register_normalises_the_email_and_stores_only_a_hash(env: Env) -> None:
    user = await env.auth.register("  Ada@Example.COM ", PASSWORD, "Ada")
    assert user.email == "ada@example.com"
    assert user.role is Role.CUSTOMER and user.is_active
    stored = env.db.users.rows[user.id]
    assert stored.password_hash == f"fake${PASSWORD}"
    assert env.db.commits == 1


async def test_register_refuses_the_same_email_in_another_case(env: Env) -> None:
    await env.auth.register("ada@example.com", PASSWORD)
    with pytest.raises(EmailTaken):
        await env.auth.register("ADA@example.com", PASSWORD)
    assert len(env.db.users.rows) == 1


@pytest.mark.parametrize(
    ("password", "problem"),
    [("short7!", "at least 8 characters"), ("é" * 37, "at most 72 bytes")],
)
async def test_register_enforces_the_password_policy(env: Env, password: str, problem: str) -> None:
    with pytest.raises(InvalidPassword) as caught:
        await env.auth.register("ada@example.com", password)
    assert problem in caught.value.detail
    assert caught.value.extra["errors"][0]["loc"] == ["password"]
    assert env.db.users.rows == {}


# --------------------------------------------------------------------------- login
async def test_login_issues_an_access_token_and_a_hashed_refresh_token(env: Env) -> None:
    user = await env.auth.register("ada@example.com", PASSWORD)
    pair = await env.auth.login("ADA@example.com", PASSWORD)
    assert env.tokens.decode_access(pair.access_token).sub == user.id
    (stored,) = env.db.refresh_tokens.rows.values()
    assert stored.token_hash == env.tokens.hash_refresh_token(pair.refresh_token)
    assert pair.refresh_token not in stored.token_hash
    assert stored.expires_at == env.clock.now() + timedelta(seconds=3600)


async def test_unknown_email_is_verified_against_the_dummy_hash(env: Env) -> None:
    with pytest.raises(InvalidCredentials) as unknown:
        await env.auth.login("nobody@example.com", PASSWORD)
    assert env.hasher.verified == [None]  # the same bcrypt work as a real account
    await env.auth.register("ada@example.com", PASSWORD)
    with pytest.raises(InvalidCredentials) as wrong:
        await env.auth.login("ada@example.com", "wrong-password")
    assert unknown.value.detail == wrong.value.detail
    assert unknown.value.slug == wrong.value.slug


async def test_a_deactivated_account_cannot_log_in_even_with_its_password(env: Env) -> None:
    user = await env.auth.register("ada@example.com", PASSWORD)
    env.db.users.rows[user.id].is_active = False
    with pytest.raises(InvalidCredentials):
        await env.auth.login("ada@example.com", PASSWORD)


async def test_five_failures_lock_the_email_even_for_the_right_password(env: Env) -> None:
    await env.auth.register("ada@example.com", PASSWORD)
    for _ in range(5):
        with pytest.raises(InvalidCredentials):
            await env.auth.login("ada@example.com", "wrong-password")
    with pytest.raises(AccountLocked) as locked:
        await env.auth.login("ada@example.com", PASSWORD)
    assert locked.value.retry_after == 900
    env.monotonic += 901
    assert (await env.auth.login("ada@example.com", PASSWORD)).access_token


async def test_unknown_emails_lock_the_same_way(env: Env) -> None:
    for _ in range(5):
        with pytest.raises(InvalidCredentials):
            await env.auth.login("ghost@example.com", "whatever-1")
    with pytest.raises(AccountLocked):
        await env.auth.login("ghost@example.com", "whatever-1")


async def test_a_success_resets_the_failure_count(env: Env) -> None:
    await env.auth.register("ada@example.com", PASSWORD)
    for _ in range(4):
        with pytest.raises(InvalidCredentials):
            await env.auth.login("ada@example.com", "wrong-password")
    await env.auth.login("ada@example.com", PASSWORD)
    for _ in range(4):
        with pytest.raises(InvalidCredentials):
            await env.auth.login("ada@example.com", "wrong-password")
    assert await env.auth.login("ada@example.com", PASSWORD)


# --------------------------------------------------------------------------- refresh
async def test_refresh_rotates_within_the_family(env: Env) -> None:
    await env.auth.register("ada@example.com", PASSWORD)
    first = await env.auth.login("ada@example.com", PASSWORD)
    second = await env.auth.refresh(first.refresh_token)
    assert second.refresh_token != first.refresh_token
    old = await env.db.refresh_tokens.get_by_hash(
        env.tokens.hash_refresh_token(first.refresh_token)
    )
    new = await env.db.refresh_tokens.get_by_hash(
        env.tokens.hash_refresh_token(second.refresh_token)
    )
    assert old is not None and new is not None
    assert old.spent_at == env.clock.now() and old.replaced_by == new.id
    assert new.family_id == old.family_id and new.spent_at is None


async def test_reusing_a_spent_token_revokes_the_whole_family(env: Env) -> None:
    await env.auth.register("ada@example.com", PASSWORD)
    first = await env.auth.login("ada@example.com", PASSWORD)
    second = await env.auth.refresh(first.refresh_token)
    with pytest.raises(RefreshTokenReused):
        await env.auth.refresh(first.refresh_token)
    # The revocation was committed although the request failed: the new token is dead too.
    assert all(t.revoked_at is not None for t in env.db.refresh_tokens.rows.values())
    with pytest.raises(TokenInvalid):
        await env.auth.refresh(second.refresh_token)


async def test_other_families_survive_a_reuse(env: Env) -> None:
    await env.auth.register("ada@example.com", PASSWORD)
    phone = await env.auth.login("ada@example.com", PASSWORD)
    laptop = await env.auth.login("ada@example.com", PASSWORD)
    await env.auth.refresh(phone.refresh_token)
    with pytest.raises(RefreshTokenReused):
        await env.auth.refresh(phone.refresh_token)
    assert await env.auth.refresh(laptop.refresh_token)


async def test_expired_unknown_and_deactivated_refreshes_fail(env: Env) -> None:
    user = await env.auth.register("ada@example.com", PASSWORD)
    pair = await env.auth.login("ada@example.com", PASSWORD)
    with pytest.raises(TokenInvalid):
        await env.auth.refresh("not-a-token-we-issued")
    env.db.users.rows[user.id].is_active = False
    with pytest.raises(TokenInvalid):
        await env.auth.refresh(pair.refresh_token)
    env.db.users.rows[user.id].is_active = True
    env.clock.advance(3600)
    with pytest.raises(TokenInvalid) as expired:
        await env.auth.refresh(pair.refresh_token)
    assert not isinstance(expired.value, RefreshTokenReused)


async def test_logout_revokes_the_family_and_is_idempotent(env: Env) -> None:
    await env.auth.register("ada@example.com", PASSWORD)
    pair = await env.auth.login("ada@example.com", PASSWORD)
    assert await env.auth.logout(pair.refresh_token) is True
    assert await env.auth.logout(pair.refresh_token) is True
    assert await env.auth.logout("unknown") is False
    assert await env.auth.logout(None) is False
    with pytest.raises(TokenInvalid):
        await env.auth.refresh(pair.refresh_token)


# --------------------------------------------------------------------------- access, password
async def test_access_tokens_of_missing_or_inactive_users_are_refused(env: Env) -> None:
    user = await env.auth.register("ada@example.com", PASSWORD)
    token = env.tokens.issue_access(user.id).token
    assert (await env.auth.user_for_access_token(token)).id == user.id
    env.db.users.rows[user.id].is_active = False
    with pytest.raises(TokenInvalid):
        await env.auth.user_for_access_token(token)
    del env.db.users.rows[user.id]
    with pytest.raises(TokenInvalid):
        await env.auth.user_for_access_token(token)


async def test_change_password_checks_the_current_one_and_revokes_every_session(
    env: Env,
) -> None:
    user = await env.auth.register("ada@example.com", PASSWORD)
    one = await env.auth.login("ada@example.com", PASSWORD)
    two = await env.auth.login("ada@example.com", PASSWORD)
    with pytest.raises(WrongPassword):
        await env.auth.change_password(user.id, "not-my-password", "brand-new-pass")
    with pytest.raises(InvalidPassword):
        await env.auth.change_password(user.id, PASSWORD, "short")
    await env.auth.change_password(user.id, PASSWORD, "brand-new-pass")
    for pair in (one, two):
        with pytest.raises(TokenInvalid):
            await env.auth.refresh(pair.refresh_token)
    with pytest.raises(InvalidCredentials):
        await env.auth.login("ada@example.com", PASSWORD)
    assert await env.auth.login("ada@example.com", "brand-new-pass")


# --------------------------------------------------------------------------- administrators
async def test_first_admin_bootstrap_is_idempotent(env: Env) -> None:
    created = await env.auth.ensure_first_admin("Root@Example.com", PASSWORD)
    assert created.outcome == "created" and created.user.role is Role.ADMIN
    again = await env.auth.ensure_first_admin("root@example.com", "another-password")
    assert again.outcome == "unchanged" and again.user.id == created.user.id
    assert len(env.db.users.rows) == 1
    assert await env.auth.login("root@example.com", PASSWORD)  # password not overwritten


async def test_first_admin_bootstrap_never_promotes_an_existing_customer(env: Env) -> None:
    squatter = await env.auth.register("root@example.com", "squatters-pass")
    result = await env.auth.ensure_first_admin("root@example.com", PASSWORD)
    assert result.outcome == "refused"
    assert env.db.users.rows[squatter.id].role is Role.CUSTOMER


async def test_create_admin_creates_or_promotes_with_the_new_password(env: Env) -> None:
    created = await env.auth.create_admin("new@example.com", PASSWORD)
    assert created.outcome == "created" and created.user.is_admin
    customer = await env.auth.register("cust@example.com", "old-password")
    session = await env.auth.login("cust@example.com", "old-password")
    env.db.users.rows[customer.id].is_active = False
    promoted = await env.auth.create_admin("CUST@example.com", "fresh-password")
    assert promoted.outcome == "promoted"
    stored = env.db.users.rows[customer.id]
    assert stored.is_admin and stored.is_active
    assert await env.auth.login("cust@example.com", "fresh-password")
    with pytest.raises(TokenInvalid):
        await env.auth.refresh(session.refresh_token)
    with pytest.raises(InvalidPassword):
        await env.auth.create_admin("x@example.com", "short")


async def test_admins_deactivate_promote_but_never_lock_themselves_out(env: Env) -> None:
    admin = (await env.auth.create_admin("root@example.com", PASSWORD)).user
    user = await env.auth.register("ada@example.com", PASSWORD)
    session = await env.auth.login("ada@example.com", PASSWORD)
    deactivated = await env.users.administer(admin, user.id, is_active=False)
    assert not deactivated.is_active
    with pytest.raises(TokenInvalid):  # its refresh tokens died with it
        await env.auth.refresh(session.refresh_token)
    promoted = await env.users.administer(admin, user.id, is_active=True, role=Role.ADMIN)
    assert promoted.is_admin and promoted.is_active
    commits = env.db.commits
    assert (await env.users.administer(admin, user.id, role=Role.ADMIN)).is_admin
    assert env.db.commits == commits  # no change, no write
    with pytest.raises(SelfLockout):
        await env.users.administer(admin, admin.id, is_active=False)
    with pytest.raises(SelfLockout):
        await env.users.administer(admin, admin.id, role=Role.CUSTOMER)
    with pytest.raises(UserNotFound):
        await env.users.administer(admin, "00000000-0000-4000-8000-000000000000", role=Role.ADMIN)


async def test_profile_update_and_search(env: Env) -> None:
    ada = await env.auth.register("ada@example.com", PASSWORD, "Ada Lovelace")
    await env.auth.register("bob@example.com", PASSWORD, "Bob")
    updated = await env.users.update_profile(ada.id, "Countess Ada")
    assert updated.full_name == "Countess Ada"
    page = await env.users.search("countess", limit=10, offset=0)
    assert [u.id for u in page.items] == [ada.id] and page.total == 1
    with pytest.raises(UserNotFound):
        await env.users.get("00000000-0000-4000-8000-000000000000")
    with pytest.raises(UserNotFound):
        await env.users.update_profile("00000000-0000-4000-8000-000000000000", None)
