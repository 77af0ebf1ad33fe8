"""A real Celery worker relays the outbox and dispatches each event to its consumers once,
over the embedded SQLite broker and over Redis; the API request id reaches its log lines."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
import structlog
from sqlalchemy import func, select

from backend.domain.events import DomainEvent
from backend.infrastructure.db.tables import outbox_events, processed_events
from tests.worker.processes import wait_until
from tests.worker.stack import MODES, Stack

pytestmark = pytest.mark.slow


async def add_events(stack: Stack, n: int, request_id: str) -> list[str]:
    """Commit `n` order.created events (for orders that do not exist) through a container,
    as the services do (`EventRecorder.record`): the commit kicks the relay."""
    structlog.contextvars.bind_contextvars(request_id=request_id)
    try:
        async with stack.container() as container, container.uow() as uow:
            events = [
                DomainEvent(
                    type="order.created",
                    aggregate_type="order",
                    aggregate_id=str(uuid.uuid4()),
                    payload={"n": i},
                )
                for i in range(n)
            ]
            for event in events:
                await container.events.record(uow, event)
            await uow.commit()
    finally:
        structlog.contextvars.unbind_contextvars("request_id")
    return [e.id for e in events]


async def outbox_state(stack: Stack) -> dict[str, Any]:
    async with stack.container() as container, container.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(outbox_events.c.id, outbox_events.c.attempts, outbox_events.c.handled_at)
            )
        ).all()
        processed = (
            await conn.execute(
                select(processed_events.c.event_id, func.count())
                .where(processed_events.c.consumer == "workflow.validate_order")
                .group_by(processed_events.c.event_id)
            )
        ).all()
    return {
        "unhandled": [r.id for r in rows if r.handled_at is None],
        "attempts": sorted(r.attempts for r in rows),
        "processed": dict(processed),
    }


@pytest.mark.parametrize("mode", MODES)
def test_the_worker_relays_dispatches_and_handles_every_event_once(
    make_stack: Any, mode: str
) -> None:
    stack = make_stack(mode, workflow_retry_after=3600)
    worker = stack.worker()
    # The commit's relay kick is the only trigger here (no Beat, no redelivery): it expires
    # after OUTBOX_POLL_INTERVAL, so the worker must be consuming before the commit (a worker
    # starting slower than that on a loaded machine found the kick expired).
    wait_until(
        lambda: any(str(line.get("event", "")).endswith(" ready.") for line in worker.json_lines()),
        90,
        lambda: f"the worker never became ready\n{stack.logs()}",
    )
    ids = asyncio.run(add_events(stack, 40, request_id="req-relay-1"))

    def all_handled() -> bool:
        return not asyncio.run(outbox_state(stack))["unhandled"]

    wait_until(all_handled, 90, lambda: f"events not handled\n{stack.logs()}")
    state = asyncio.run(outbox_state(stack))
    assert state["attempts"] == [1] * 40  # each handed to the consumers once
    assert state["processed"] == dict.fromkeys(ids, 1)  # the consumer ran once per event

    # The consumer ran for each event with the request id of the request that wrote it.
    def consumed() -> list[dict[str, Any]]:
        return [
            line
            for line in worker.json_lines()
            if line["event"] == "event_consumed" and line["consumer"] == "workflow.validate_order"
        ]

    wait_until(lambda: len(consumed()) >= len(ids), 10, lambda: stack.logs())
    assert sorted(line["event_id"] for line in consumed()) == sorted(ids)
    assert {line.get("request_id") for line in consumed()} == {"req-relay-1"}


@pytest.mark.parametrize("mode", MODES)
def test_a_task_published_during_a_request_logs_its_request_id(make_stack: Any, mode: str) -> None:
    stack = make_stack(mode)
    worker = stack.worker(concurrency=1)

    async def publish() -> None:
        structlog.contextvars.bind_contextvars(request_id="req-heartbeat-7")
        try:
            async with stack.container() as container:
                await container.tasks.publish("orderflow.heartbeat")
        finally:
            structlog.contextvars.unbind_contextvars("request_id")

    asyncio.run(publish())

    def heartbeat_logged() -> bool:
        return any(line["event"] == "worker_heartbeat" for line in worker.json_lines())

    wait_until(heartbeat_logged, 60, lambda: f"no heartbeat\n{stack.logs()}")
    line = next(line for line in worker.json_lines() if line["event"] == "worker_heartbeat")
    assert line["request_id"] == "req-heartbeat-7"
    assert line["task"] == "orderflow.heartbeat" and line["task_id"]
