"""The API's /metrics reports the outbox backlog: unpublished events and the oldest's age."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from backend.domain.events import DomainEvent
from tests.support import make_settings


async def gauge(client: Any, name: str) -> float | None:
    text = (await client.get("/metrics")).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                return float(sample.value)
    return None


async def wait_for_gauge(client: Any, name: str, predicate: Any) -> float:
    for _ in range(100):
        value = await gauge(client, name)
        if value is not None and predicate(value):
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"{name} never satisfied the condition (last {value})")


async def test_metrics_report_the_outbox_backlog_and_its_age(
    tmp_path: Any, sqlite_url: str, client_for: Any
) -> None:
    settings = make_settings(tmp_path, sqlite_url, outbox_poll_interval=0.05)
    async with client_for(settings) as client:
        container = client.app.state.container
        old = datetime.now(UTC) - timedelta(minutes=10)
        async with container.uow() as uow:
            for i in range(3):
                await uow.outbox.add(
                    DomainEvent("order.created", "order", f"o{i}", {}, occurred_at=old)
                )
            await uow.commit()

        assert await wait_for_gauge(client, "outbox_pending_events", lambda v: v == 3) == 3
        age = await gauge(client, "outbox_oldest_pending_age_seconds")
        assert age is not None and 600 <= age < 3600

        async with container.uow() as uow:  # a relay hands them over
            claimed = await uow.outbox.claim_unpublished(10)
            await uow.outbox.mark_published([r.event.id for r in claimed], datetime.now(UTC))
            await uow.commit()
        await wait_for_gauge(client, "outbox_pending_events", lambda v: v == 0)
        assert await gauge(client, "outbox_oldest_pending_age_seconds") == 0
