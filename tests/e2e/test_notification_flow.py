"""Notifications made by a real Celery worker, in embedded mode (SQLite + SQLite broker) and
full mode (PostgreSQL + Redis): a stream on API process A receives what the worker made from
an order placed on API process B, a reconnect gets exactly what it missed, the mail reaches
an SMTP server, and an order's whole life gives one notification and one email per event
even when every event is relayed twice."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from backend.infrastructure.db.tables import (
    email_sends,
    notifications,
    outbox_events,
    processed_events,
)
from tests.e2e.serving import Served, serving
from tests.helpers.orders import body_of, seed_product, seed_user
from tests.helpers.smtp import Mailbox, smtp_server
from tests.helpers.sse import SseEvent, open_stream
from tests.worker.stack import MODES, Stack, make_stack, wait_for

pytestmark = pytest.mark.slow
__all__ = ["make_stack"]  # the fixture, imported by name

ORDERS = "/api/v1/orders"
WAIT = 30.0  # a bound for "never arrived", not a speed requirement
DELIVERED_WITHIN = timedelta(seconds=2)  # worker commit -> event on the stream (the bound)
NOTIFICATION_CONSUMERS = ("notifications.in_app", "notifications.email")


@contextmanager
def two_api_processes(stack: Stack, tmp_path: Path) -> Iterator[tuple[Served, Served]]:
    """`python -m backend serve` twice, on the stack's database, broker and Redis."""
    env = {k: v for k, v in stack.env.items() if k not in ("PORT", "HOST")}
    for name in ("api-a", "api-b"):
        (tmp_path / name).mkdir()
    with ExitStack() as processes:
        a = processes.enter_context(serving(tmp_path / "api-a", **env))
        b = processes.enter_context(serving(tmp_path / "api-b", **env))
        yield a, b


async def seeded(stack: Stack) -> dict[str, Any]:
    """A customer, an admin (bearer headers) and a product, written straight to the database."""
    async with stack.container() as c:
        async with c.uow() as uow:
            customer = await seed_user(uow)
            admin = await seed_user(uow, admin=True)
            product = await seed_product(uow, stock=100, price="10.00")
            await uow.commit()

        def bearer(user_id: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {c.tokens.issue_access(user_id).token}"}

        return {
            "customer": customer,
            "customer_headers": bearer(customer.id),
            "admin_headers": bearer(admin.id),
            "product_id": product.id,
        }


def latency(event: SseEvent) -> timedelta:
    """From the worker writing the notification to this client reading it."""
    created_at = datetime.fromisoformat(event.json()["created_at"].replace("Z", "+00:00"))
    return event.received_at - created_at


async def place_order(base: str, headers: dict[str, str], product_id: str) -> str:
    async with httpx.AsyncClient(base_url=base) as client:
        response = await client.post(ORDERS, json=body_of((product_id, 1)), headers=headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@pytest.mark.parametrize("mode", MODES)
def test_a_stream_on_one_api_process_receives_what_the_worker_made(
    make_stack: Any, tmp_path: Path, mode: str
) -> None:
    mailbox = Mailbox()
    with smtp_server(mailbox) as smtp_port:
        stack: Stack = make_stack(
            mode,
            outbox_poll_interval=1,
            order_progression_interval=3600,  # no Beat here: only the events move orders
            sse_recheck_seconds=60,  # what arrives is rung, not found by the periodic re-read
            sse_tail_interval=0.2,
            smtp_host="127.0.0.1",
            smtp_port=smtp_port,
            smtp_starttls="false",
        )
        data = asyncio.run(seeded(stack))
        stack.worker()
        with two_api_processes(stack, tmp_path) as (a, b):
            asyncio.run(_stream_scenario(stack, a, b, data))
        asyncio.run(wait_for(_mails_arrived(mailbox, data), WAIT, stack.logs))
    subjects = sorted(str(m["Subject"]) for m in _mails_to(mailbox, data))
    assert any(s.endswith("placed") for s in subjects), subjects
    assert any(s.endswith("is now approved") for s in subjects), subjects


def _mails_to(mailbox: Mailbox, data: dict[str, Any]) -> list[Any]:
    return [mail for rcpt, mail in mailbox.accepted if rcpt == [data["customer"].email]]


def _mails_arrived(mailbox: Mailbox, data: dict[str, Any]) -> Any:
    async def predicate() -> bool:
        return len(_mails_to(mailbox, data)) >= 3  # placed, validated, approved

    return predicate


async def _stream_scenario(stack: Stack, a: Served, b: Served, data: dict[str, Any]) -> None:
    customer, admin = data["customer_headers"], data["admin_headers"]
    async with open_stream(a.base, headers=customer) as live:
        order_id = await place_order(b.base, customer, data["product_id"])
        created = await live.next_event(WAIT)
        validated = await live.next_event(WAIT)
    assert (created.event, created.json()["data"]["order_id"]) == ("order.created", order_id)
    assert validated.json()["data"]["status"] == "validated"
    for event in (created, validated):
        assert latency(event) <= DELIVERED_WITHIN, (event, latency(event), stack.logs())

    # Disconnected: the admin approves; the reconnect (on A, from the last id read) gets that
    # one, and then the next live one, nothing twice.
    async with httpx.AsyncClient(base_url=b.base) as client:
        approved = await client.post(f"{ORDERS}/{order_id}/approve", headers=admin)
        assert approved.status_code == 200, approved.text

        async def three_notifications() -> bool:
            listed = await client.get("/api/v1/notifications", headers=customer)
            return bool(listed.json()["total"] == 3)

        await wait_for(three_notifications, WAIT, stack.logs)
    resume = {**customer, "Last-Event-ID": str(validated.id)}
    async with open_stream(a.base, headers=resume) as again:
        missed = await again.next_event(WAIT)
        assert missed.json()["data"]["status"] == "approved"
        second_order = await place_order(b.base, customer, data["product_id"])
        newest = await again.next_event(WAIT)
    assert int(missed.id or 0) > int(validated.id or 0)
    assert newest.json()["data"]["order_id"] == second_order, "a repeat instead of the new one"
    assert latency(newest) <= DELIVERED_WITHIN, (newest, latency(newest), stack.logs())


FAST_WORKFLOW: dict[str, Any] = {
    "order_progression_interval": 1,
    "order_grace_period": 1,
    "order_processing_time": 1,
    "outbox_poll_interval": 1,
    "auto_approve_max_total": "100.00",
    "workflow_retry_after": 30,
}


@pytest.mark.parametrize("mode", MODES)
async def test_an_orders_life_gives_one_notification_and_one_email_per_event_relayed_twice(
    make_stack: Any, client_for: Any, mode: str
) -> None:
    stack: Stack = make_stack(mode, **FAST_WORKFLOW)
    async with client_for(stack.settings) as client:
        data_user, product = await _customer_and_product(client)
        response = await client.post(ORDERS, json=body_of((product, 1)), headers=data_user)
        assert response.status_code == 201, response.text
        order_id = response.json()["id"]
    stack.worker()
    stack.beat()

    async def completed_and_handled() -> bool:
        done = (await stack.statuses()).get(order_id) == "completed"
        return done and await stack.unhandled_events() == 0 and await _notified(stack) == 5

    await wait_for(completed_and_handled, 120, lambda: stack.logs())
    events = await _event_ids(stack)
    assert len(events) == 5  # created, validated, approved, processing, completed

    # Relayed again with the dedup records kept, then again without those of the
    # notification consumers (as if purged): the unique keys hold the line.
    await _relay_again(stack)
    await _delete_dedup_rows(stack)
    await _relay_again(stack)

    async def handled_again() -> bool:
        rows = await stack.rows(
            select(func.count())
            .select_from(processed_events)
            .where(processed_events.c.consumer.in_(NOTIFICATION_CONSUMERS))
        )
        return rows[0][0] == 2 * len(events) and await stack.unhandled_events() == 0

    await wait_for(handled_again, 120, lambda: stack.logs())
    per_event = dict(
        await stack.rows(
            select(notifications.c.event_id, func.count()).group_by(notifications.c.event_id)
        )
    )
    mails = dict(
        await stack.rows(
            select(email_sends.c.event_id, func.count()).group_by(email_sends.c.event_id)
        )
    )
    assert per_event == dict.fromkeys(events, 1), stack.logs()
    assert mails == dict.fromkeys(events, 1)


async def _customer_and_product(client: httpx.AsyncClient) -> tuple[dict[str, str], str]:
    from tests.helpers.orders import api_product, api_user

    _, headers = await api_user(client)
    product = await api_product(client, stock=10, price="20.00")
    return headers, product.id


async def _notified(stack: Stack) -> int:
    return int((await stack.rows(select(func.count()).select_from(notifications)))[0][0])


async def _event_ids(stack: Stack) -> list[str]:
    return [str(row[0]) for row in await stack.rows(select(outbox_events.c.id))]


async def _write(stack: Stack, statement: Any) -> None:
    engine = create_async_engine(stack.settings.database_url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            await conn.execute(statement)
    finally:
        await engine.dispose()


async def _relay_again(stack: Stack) -> None:
    """Every event back to unpublished: the relay hands each to the broker once more."""
    await _write(stack, update(outbox_events).values(published_at=None, handled_at=None))


async def _delete_dedup_rows(stack: Stack) -> None:
    consumers = processed_events.c.consumer.in_(NOTIFICATION_CONSUMERS)
    await _write(stack, delete(processed_events).where(consumers))
