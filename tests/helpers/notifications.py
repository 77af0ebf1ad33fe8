"""Seeding notifications through the app's own repositories (API tests)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from backend.domain.notifications import NewNotification

START = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)


async def seed_notifications(client: Any, user_id: str, count: int) -> list[str]:
    """`count` notifications for the user, oldest first; their ids as the API shows them."""
    ids = []
    async with client.app.state.container.uow() as uow:
        for n in range(count):
            made = await uow.notifications.add(
                NewNotification(
                    user_id=user_id,
                    event_id=str(uuid.uuid4()),
                    type="order.status_changed",
                    title=f"Order {n} validated",
                    body="Your order moved from pending to validated.",
                    data={"order_id": f"o{n}", "status": "validated"},
                    created_at=START + timedelta(seconds=n),
                )
            )
            assert made is not None
            ids.append(str(made.id))
        await uow.commit()
    return ids


async def seed_notification(client: Any, user_id: str) -> str:
    [only] = await seed_notifications(client, user_id, 1)
    return only
