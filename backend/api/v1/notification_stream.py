"""The SSE response of GET /notifications/stream (ADR 0015).

The stream's slot is taken before the response starts, so "too many streams" is a real
429, and given back however the stream ends: the events run out (lifetime cap, shutdown),
the client goes away (sse-starlette cancels the generator), or the response never starts
iterating (the background task).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.background import BackgroundTask

from backend.api.v1.schemas.notifications import NotificationOut
from backend.bootstrap import Container
from backend.domain.notifications import StreamWakeup


async def _events(
    container: Container, doorbell: StreamWakeup, user_id: str, after_id: int
) -> AsyncIterator[ServerSentEvent]:
    try:
        # First thing on the wire: the client knows it is connected, and how soon to retry.
        yield ServerSentEvent(comment="connected", retry=container.settings.sse_retry_ms)
        async for notification in container.notifications.follow(doorbell, user_id, after_id):
            body = NotificationOut.of(notification).model_dump(mode="json")
            yield ServerSentEvent(
                data=json.dumps(body, separators=(",", ":")),
                event=notification.type,
                id=str(notification.id),
            )
    finally:
        container.notification_hub.release(doorbell)


def stream_response(container: Container, user_id: str, after_id: int) -> EventSourceResponse:
    hub = container.notification_hub
    doorbell = hub.acquire(user_id)  # TooManyStreams: a 429 problem, nothing started

    async def release() -> None:
        hub.release(doorbell)

    return EventSourceResponse(
        _events(container, doorbell, user_id, after_id),
        ping=container.settings.sse_ping_seconds,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        background=BackgroundTask(release),
    )
