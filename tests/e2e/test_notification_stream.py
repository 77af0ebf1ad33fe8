"""The notification stream on a real server (`python -m backend serve`, embedded mode):
replay and resume by Last-Event-ID, one-time tickets, the per-user limit, the lifetime cap,
and a clean end on shutdown. Notifications are written straight into the database here, as
the worker would (tests/e2e/test_notification_flow.py drives them through the worker)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from backend.domain.notifications import NewNotification
from backend.infrastructure.db.engine import create_engine
from backend.infrastructure.db.uow import SqlUnitOfWork
from tests.e2e.serving import Served, serving
from tests.helpers.sse import open_stream

pytestmark = pytest.mark.slow

PASSWORD = "correct-horse-9"
WAIT = 15.0  # a bound for "never arrived", not a speed requirement


async def sign_up(base: str) -> tuple[str, dict[str, str]]:
    email = f"sse-{uuid.uuid4().hex[:10]}@example.com"
    async with httpx.AsyncClient(base_url=base) as client:
        registered = await client.post(
            "/api/v1/auth/register", json={"email": email, "password": PASSWORD}
        )
        assert registered.status_code == 201, registered.text
        login = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert login.status_code == 200, login.text
    return registered.json()["id"], {"Authorization": f"Bearer {login.json()['access_token']}"}


async def notify(served: Served, user_id: str, n: int) -> str:
    """A notification for the user, committed as the worker's consumer does; its id."""
    engine = create_engine(served.env["DATABASE_URL"])
    try:
        async with SqlUnitOfWork(engine) as uow:
            await uow.notifications.lock_recipient(user_id)
            made = await uow.notifications.add(
                NewNotification(
                    user_id=user_id,
                    event_id=str(uuid.uuid4()),
                    type="order.status_changed",
                    title=f"Order {n} validated",
                    body="moved",
                    data={"n": n},
                    created_at=datetime.now(UTC),
                )
            )
            await uow.commit()
    finally:
        await engine.dispose()
    assert made is not None
    return str(made.id)


def stream_settings(**overrides: str) -> dict[str, str]:
    return {"RATE_LIMIT_ENABLED": "false", "SSE_TAIL_INTERVAL": "0.1", **overrides}


def test_a_reconnect_with_last_event_id_gets_exactly_what_it_missed(tmp_path: Path) -> None:
    async def scenario(served: Served) -> None:
        alice, headers = await sign_up(served.base)
        bob, bob_headers = await sign_up(served.base)
        async with open_stream(served.base, headers=headers) as live:
            first = await notify(served, alice, 1)
            await notify(served, bob, 99)  # another user's: never on alice's stream
            event = await live.next_event(WAIT)
            assert (event.id, event.event) == (first, "order.status_changed")
            assert event.json()["id"] == first and event.json()["data"] == {"n": 1}
            assert "connected" in live.comments
        missed = [await notify(served, alice, n) for n in (2, 3)]
        resume = {**headers, "Last-Event-ID": first}
        async with open_stream(served.base, headers=resume) as again:
            assert [(await again.next_event(WAIT)).id for _ in missed] == missed
            newest = await notify(served, alice, 4)
            assert (await again.next_event(WAIT)).id == newest  # not a repeat of 3
        async with open_stream(served.base, headers=bob_headers) as bobs:  # from the start
            assert (await bobs.next_event(WAIT)).json()["data"] == {"n": 99}
        # Without the header (a new EventSource), the query parameter resumes.
        params = {"last_event_id": missed[-1]}
        async with open_stream(served.base, headers=headers, params=params) as by_query:
            assert (await by_query.next_event(WAIT)).id == newest

    with serving(tmp_path, **stream_settings()) as served:
        asyncio.run(scenario(served))


def test_tickets_limits_and_the_lifetime_cap(tmp_path: Path) -> None:
    async def scenario(served: Served) -> None:
        alice, headers = await sign_up(served.base)
        async with httpx.AsyncClient(base_url=served.base) as client:
            issued = await client.post("/api/v1/notifications/stream-ticket", headers=headers)
        ticket = issued.json()["ticket"]
        async with open_stream(served.base, params={"ticket": ticket}) as by_ticket:
            made = await notify(served, alice, 1)
            assert (await by_ticket.next_event(WAIT)).id == made
            async with httpx.AsyncClient(base_url=served.base) as client:
                spent = await client.get("/api/v1/notifications/stream", params={"ticket": ticket})
                assert spent.status_code == 401
                assert spent.json()["type"].endswith("/invalid-stream-ticket")
                # The ticket's stream and a bearer one are the two allowed: a third is 429.
                async with open_stream(served.base, headers=headers):
                    third = await client.get("/api/v1/notifications/stream", headers=headers)
                    assert third.status_code == 429, third.text
                    assert third.json()["type"].endswith("/too-many-streams")
                    assert int(third.headers["retry-after"]) >= 1
            # The lifetime cap (3 s here) ends a stream from the server side.
            assert await by_ticket.ended(WAIT), "the stream outlived its lifetime cap"
        # Disconnected and expired streams gave their slots back.
        async with (
            open_stream(served.base, headers=headers),
            open_stream(served.base, headers=headers),
        ):
            pass

    settings = stream_settings(SSE_MAX_STREAMS_PER_USER="2", SSE_MAX_CONNECTION_SECONDS="3")
    with serving(tmp_path, **settings) as served:
        asyncio.run(scenario(served))


def test_shutdown_ends_open_streams_and_the_server_exits_by_itself(tmp_path: Path) -> None:
    outcome: dict[str, Any] = {}

    async def scenario(served: Served) -> None:
        _, headers = await sign_up(served.base)
        async with open_stream(served.base, headers=headers) as live:
            served.proc.send_signal(signal.SIGTERM)
            outcome["ended"] = await live.ended(WAIT)
        try:
            outcome["exit"] = await asyncio.to_thread(served.proc.wait, 20)
        except subprocess.TimeoutExpired:
            outcome["exit"] = None

    with serving(tmp_path, **stream_settings()) as served:
        asyncio.run(scenario(served))
        log = served.log_path.read_text()
    assert outcome["ended"], f"the stream stayed open after SIGTERM:\n{log[-3000:]}"
    # uvicorn re-raises the signal it handled after its graceful shutdown: -SIGTERM is its
    # clean exit; None would mean it still waited on the stream.
    assert outcome["exit"] in (0, -signal.SIGTERM), f"no clean exit:\n{log[-3000:]}"
    assert "Application shutdown complete." in log
