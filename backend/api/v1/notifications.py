"""/notifications: the caller's in-app notifications, and their live stream (ADR 0015)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request, Response, status
from sse_starlette import EventSourceResponse

from backend.api.deps import ContainerDep, CurrentUser, OptionalUser, container_of
from backend.api.openapi import problems
from backend.api.v1.notification_stream import stream_response
from backend.api.v1.pagination import DEFAULT_LIMIT, Limit, Offset
from backend.api.v1.schemas.notifications import (
    NOTIFICATION_ID_PATTERN,
    NotificationOut,
    NotificationPageOut,
    SequenceText,
    StreamTicketOut,
    without_null,
)
from backend.domain.errors import NotAuthenticated
from backend.domain.events import EVENT_TYPES
from backend.domain.notifications import NotificationQuery

router = APIRouter(prefix="/notifications", tags=["notifications"])

NotificationId = Annotated[
    str, Path(pattern=NOTIFICATION_ID_PATTERN, description="A notification's `id`.")
]
STREAM_EVENT_SCHEMA = {
    "type": "object",
    "properties": {
        "event": {"type": "string", "enum": list(EVENT_TYPES)},
        "id": {"type": "string", "pattern": NOTIFICATION_ID_PATTERN},
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": {"$ref": "#/components/schemas/NotificationOut"},
        },
        "retry": {"type": "integer", "minimum": 0},
    },
    "required": ["event", "id", "data"],
}
STREAM_DESCRIPTION = """Server-Sent Events: each new notification of the caller as an event
(`event:` its type, `id:` its id, `data:` its JSON), keep-alive comments in between.

Authenticate with `Authorization: Bearer <token>`, or, where a header cannot be sent
(a browser's `EventSource`), with `?ticket=` from `POST /notifications/stream-ticket`
(one use). Resume with the `Last-Event-ID` header, or `?last_event_id=` (the header wins):
every notification with a higher id is sent first, none twice. A stream ends after
`SSE_MAX_CONNECTION_SECONDS`; reconnect with the last id received."""


@router.get(
    "",
    response_model=NotificationPageOut,
    summary="The caller's notifications, newest first",
    responses=problems(401, 422),
)
async def list_notifications(
    user: CurrentUser,
    container: ContainerDep,
    unread: Annotated[bool, Query(description="Only those not read yet.")] = False,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
) -> NotificationPageOut:
    query = NotificationQuery(user.id, unread_only=unread, limit=limit, offset=offset)
    page = await container.notifications.page(query)
    return NotificationPageOut(
        items=[NotificationOut.of(n) for n in page.items],
        total=page.total,
        limit=limit,
        offset=offset,
    )


@router.post(
    "/read-all",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Mark every notification of the caller read",
    responses=problems(401),
)
async def read_all(user: CurrentUser, container: ContainerDep) -> None:
    await container.notifications.mark_all_read(user.id)


@router.post(
    "/stream-ticket",
    status_code=status.HTTP_201_CREATED,
    response_model=StreamTicketOut,
    summary="A one-time ticket that opens the caller's stream without a header",
    responses=problems(401),
)
async def stream_ticket(user: CurrentUser, container: ContainerDep) -> StreamTicketOut:
    issued = await container.notifications.issue_ticket(user.id)
    return StreamTicketOut(ticket=issued.ticket, expires_at=issued.expires_at)


@router.post(
    "/{notification_id}/read",
    response_model=NotificationOut,
    summary="Mark one notification read",
    responses=problems(401, 404, 422),
)
async def read_one(
    notification_id: NotificationId, user: CurrentUser, container: ContainerDep
) -> NotificationOut:
    notification = await container.notifications.mark_read(user.id, int(notification_id))
    return NotificationOut.of(notification)


@router.get(
    "/stream",
    response_class=EventSourceResponse,
    summary="The caller's notifications, live",
    description=STREAM_DESCRIPTION,
    responses={
        200: {
            "description": "An event stream; the schema is that of each event",
            "content": {"text/event-stream": {"schema": STREAM_EVENT_SCHEMA}},
        },
        **problems(401, 422, 429),
    },
)
async def stream(
    request: Request,
    bearer_user: OptionalUser,
    ticket: Annotated[
        str | None,
        Query(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_-]+$", description="One use."),
    ] = None,
    last_event_id: Annotated[
        SequenceText | None, Query(description="Resume after this id (no header).")
    ] = None,
    last_event_id_header: Annotated[
        SequenceText | None,
        Header(
            alias="Last-Event-ID",
            description="Resume after this id.",
            json_schema_extra=without_null,  # a header is absent, never null
        ),
    ] = None,
) -> EventSourceResponse:
    container = container_of(request)
    if ticket is not None:
        user_id = await container.notifications.redeem_ticket(ticket)
    elif bearer_user is not None:
        user_id = bearer_user.id
    else:
        raise NotAuthenticated(
            "This stream needs an access token (`Authorization: Bearer <token>`) or a "
            "`ticket` from POST /api/v1/notifications/stream-ticket."
        )
    resume = last_event_id_header or last_event_id or "0"
    return stream_response(container, user_id, int(resume))
