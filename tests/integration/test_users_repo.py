"""The SQL user and refresh-token repositories on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.domain.users import EmailTaken, RefreshToken, Role, User
from backend.infrastructure.db.engine import create_engine
from backend.infrastructure.db.uow import SqlUnitOfWork

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


def make_user(email: str, name: str | None = None, *, minutes: int = 0, **kw: object) -> User:
    at = T0 + timedelta(minutes=minutes)
    values: dict[str, object] = {
        "id": str(uuid.uuid4()),
        "email": email,
        "full_name": name,
        "role": Role.CUSTOMER,
        "is_active": True,
        "password_hash": "$2b$04$" + "x" * 53,
        "created_at": at,
        "updated_at": at,
    }
    values.update(kw)
    return User(**values)  # type: ignore[arg-type]


def make_token(user: User, family: str | None = None, **kw: object) -> RefreshToken:
    values: dict[str, object] = {
        "id": str(uuid.uuid4()),
        "user_id": user.id,
        "family_id": family or str(uuid.uuid4()),
        "token_hash": uuid.uuid4().hex * 2,
        "created_at": T0,
        "expires_at": T0 + timedelta(days=7),
    }
    values.update(kw)
    return RefreshToken(**values)  # type: ignore[arg-type]


async def store(engine: AsyncEngine, *users: User) -> None:
    async with SqlUnitOfWork(engine) as uow:
        for user in users:
            await uow.users.add(user)
        await uow.commit()


async def test_users_round_trip_and_update(engine: AsyncEngine) -> None:
    ada = make_user("ada@example.com", "Ada")
    await store(engine, ada)
    async with SqlUnitOfWork(engine) as uow:
        assert await uow.users.get(ada.id) == ada
        assert await uow.users.get_by_email("ada@example.com") == ada
        assert await uow.users.get_by_email("nobody@example.com") is None
        assert await uow.users.get(str(uuid.uuid4())) is None
        changed = replace(
            ada,
            full_name=None,
            role=Role.ADMIN,
            is_active=False,
            password_hash="$2b$04$" + "y" * 53,
            updated_at=T0 + timedelta(hours=1),
        )
        await uow.users.update(changed)
        await uow.commit()
    async with SqlUnitOfWork(engine) as uow:
        stored = await uow.users.get(ada.id)
    assert stored == changed
    assert stored is not None and stored.created_at.tzinfo is not None


async def test_a_taken_email_is_email_taken(engine: AsyncEngine) -> None:
    await store(engine, make_user("ada@example.com"))
    with pytest.raises(EmailTaken):
        await store(engine, make_user("ada@example.com"))
    async with SqlUnitOfWork(engine) as uow:
        page = await uow.users.search(None, limit=10, offset=0)
    assert page.total == 1


async def test_concurrent_registrations_of_one_email_store_one(engine: AsyncEngine) -> None:
    results = await asyncio.gather(
        *(store(engine, make_user("race@example.com")) for _ in range(5)),
        return_exceptions=True,
    )
    assert sum(r is None for r in results) == 1
    assert all(isinstance(r, EmailTaken) for r in results if r is not None)


async def test_search_pages_sorts_and_matches_email_or_name(engine: AsyncEngine) -> None:
    users = [
        make_user("ada@example.com", "Ada Lovelace", minutes=1),
        make_user("bob@example.com", "Bob LOVELL", minutes=2),
        make_user("carol@lovely.org", None, minutes=3),
        make_user("dan@example.com", "Dan_Under", minutes=4),
        make_user("eve@example.com", "100% Eve", minutes=5),
    ]
    await store(engine, *users)
    async with SqlUnitOfWork(engine) as uow:
        love = await uow.users.search("LOVE", limit=10, offset=0, sort="created_at")
        assert [u.email for u in love.items] == [
            "ada@example.com",
            "bob@example.com",
            "carol@lovely.org",
        ]
        assert love.total == 3
        page = await uow.users.search(None, limit=2, offset=1, sort="-created_at")
        assert [u.email for u in page.items] == ["dan@example.com", "carol@lovely.org"]
        assert page.total == 5
        by_email = await uow.users.search(None, limit=10, offset=0, sort="-email")
        assert [u.email for u in by_email.items] == sorted((u.email for u in users), reverse=True)
        # LIKE wildcards in the query are literal characters.
        assert [u.email for u in (await uow.users.search("%", limit=10, offset=0)).items] == [
            "eve@example.com"
        ]
        assert [u.email for u in (await uow.users.search("_", limit=10, offset=0)).items] == [
            "dan@example.com"
        ]
        beyond = await uow.users.search(None, limit=10, offset=50)
        assert beyond.items == [] and beyond.total == 5


async def test_any_admin(engine: AsyncEngine) -> None:
    await store(engine, make_user("ada@example.com"))
    async with SqlUnitOfWork(engine) as uow:
        assert await uow.users.any_admin() is False
    await store(engine, make_user("root@example.com", role=Role.ADMIN))
    async with SqlUnitOfWork(engine) as uow:
        assert await uow.users.any_admin() is True


async def test_refresh_tokens_spend_once_and_revoke_by_family_or_user(
    engine: AsyncEngine,
) -> None:
    ada, bob = make_user("ada@example.com"), make_user("bob@example.com")
    await store(engine, ada, bob)
    family = str(uuid.uuid4())
    first, second = make_token(ada, family), make_token(ada, family)
    other_family, bobs = make_token(ada), make_token(bob)
    async with SqlUnitOfWork(engine) as uow:
        for token in (first, second, other_family, bobs):
            await uow.refresh_tokens.add(token)
        await uow.commit()
    spent_at = T0 + timedelta(minutes=5)
    async with SqlUnitOfWork(engine) as uow:
        assert await uow.refresh_tokens.get_by_hash(first.token_hash) == first
        assert await uow.refresh_tokens.get_by_hash("0" * 64) is None
        assert await uow.refresh_tokens.mark_spent(first.id, spent_at, second.id) is True
        assert await uow.refresh_tokens.mark_spent(first.id, spent_at, second.id) is False
        assert await uow.refresh_tokens.revoke_family(family, spent_at) == 2
        assert await uow.refresh_tokens.revoke_family(family, spent_at) == 0
        assert await uow.refresh_tokens.mark_spent(second.id, spent_at, first.id) is False
        assert await uow.refresh_tokens.revoke_all_for_user(ada.id, spent_at) == 1
        await uow.commit()
    async with SqlUnitOfWork(engine) as uow:
        stored = await uow.refresh_tokens.get_by_hash(first.token_hash)
        assert stored is not None
        assert stored.spent_at == spent_at and stored.replaced_by == second.id
        assert stored.revoked_at == spent_at
        assert not stored.is_usable(T0)
        untouched = await uow.refresh_tokens.get_by_hash(bobs.token_hash)
        assert untouched is not None and untouched.is_usable(T0)


async def test_concurrent_spends_of_one_token_have_one_winner(engine: AsyncEngine) -> None:
    ada = make_user("ada@example.com")
    await store(engine, ada)
    token = make_token(ada)
    async with SqlUnitOfWork(engine) as uow:
        await uow.refresh_tokens.add(token)
        await uow.commit()
    gate = asyncio.Event()

    async def spend() -> bool:
        async with SqlUnitOfWork(engine) as uow:
            await uow.refresh_tokens.get_by_hash(token.token_hash)  # both read it unspent
            await gate.wait()
            won = await uow.refresh_tokens.mark_spent(token.id, T0, str(uuid.uuid4()))
            await uow.commit()
            return won

    tasks = [asyncio.create_task(spend()) for _ in range(2 if "sqlite" in str(engine.url) else 8)]
    await asyncio.sleep(0.05)
    gate.set()
    results = await asyncio.gather(*tasks)
    assert sorted(results) == [False] * (len(results) - 1) + [True]
