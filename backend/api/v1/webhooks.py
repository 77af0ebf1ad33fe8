"""/webhooks: endpoints for order events, their deliveries log and replays (admin)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from backend.api.deps import AdminUser, ContainerDep
from backend.api.openapi import problems
from backend.api.v1.pagination import DEFAULT_LIMIT, Limit, Offset
from backend.api.v1.schemas.webhooks import (
    DeliveryOut,
    DeliveryPageOut,
    ReplayedOut,
    ReplayFailedIn,
    WebhookCreatedOut,
    WebhookCreateIn,
    WebhookEnabledOut,
    WebhookOut,
    WebhookPageOut,
    WebhookSecretOut,
)

router = APIRouter(prefix="/webhooks", tags=["webhooks"])
LOCATION = {"Location": {"schema": {"type": "string"}, "description": "The new webhook."}}


@router.post(
    "",
    response_model=WebhookCreatedOut,
    status_code=status.HTTP_201_CREATED,
    summary="Register a webhook endpoint; the answer holds its secret, shown only here (admin)",
    responses={201: {"headers": LOCATION}, **problems(401, 403, 422)},
)
async def create_webhook(
    body: WebhookCreateIn, _admin: AdminUser, container: ContainerDep, response: Response
) -> WebhookCreatedOut:
    endpoint = await container.webhooks.create(body.url, body.event_types, body.description)
    response.headers["Location"] = f"/api/v1/webhooks/{endpoint.id}"
    return WebhookCreatedOut.created(endpoint)


@router.get(
    "",
    response_model=WebhookPageOut,
    summary="List webhook endpoints, oldest first; no secrets (admin)",
    responses=problems(401, 403, 422),
)
async def list_webhooks(
    _admin: AdminUser, container: ContainerDep, limit: Limit = DEFAULT_LIMIT, offset: Offset = 0
) -> WebhookPageOut:
    page = await container.webhooks.page(limit, offset)
    items = [WebhookOut.of(e) for e in page.items]
    return WebhookPageOut(items=items, total=page.total, limit=limit, offset=offset)


@router.post(
    "/{webhook_id}/rotate-secret",
    response_model=WebhookSecretOut,
    summary="A new secret (shown only here); the previous one keeps signing for the overlap "
    "window (admin)",
    responses=problems(401, 403, 404, 422),
)
async def rotate_secret(
    webhook_id: uuid.UUID, _admin: AdminUser, container: ContainerDep
) -> WebhookSecretOut:
    endpoint = await container.webhooks.rotate_secret(str(webhook_id))
    return WebhookSecretOut(
        id=endpoint.id,
        secret=endpoint.secret,
        previous_secret_expires_at=endpoint.previous_secret_expires_at,
    )


@router.post(
    "/{webhook_id}/enable",
    response_model=WebhookEnabledOut,
    summary="Re-enable a disabled endpoint and replay what failed while it was failing (admin)",
    responses=problems(401, 403, 404, 422),
)
async def enable_webhook(
    webhook_id: uuid.UUID, _admin: AdminUser, container: ContainerDep
) -> WebhookEnabledOut:
    endpoint, replayed = await container.webhooks.enable(str(webhook_id))
    return WebhookEnabledOut(**WebhookOut.of(endpoint).model_dump(), replayed=replayed)


@router.get(
    "/{webhook_id}/deliveries",
    response_model=DeliveryPageOut,
    summary="The deliveries log, newest first, each with its attempts (admin)",
    responses=problems(401, 403, 404, 422),
)
async def list_deliveries(
    webhook_id: uuid.UUID,
    _admin: AdminUser,
    container: ContainerDep,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
) -> DeliveryPageOut:
    page = await container.webhooks.deliveries(str(webhook_id), limit, offset)
    items = [DeliveryOut.of(d) for d in page.items]
    return DeliveryPageOut(items=items, total=page.total, limit=limit, offset=offset)


@router.post(
    "/{webhook_id}/deliveries/replay-failed",
    response_model=ReplayedOut,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Send again every delivery that failed since a time (admin)",
    responses=problems(401, 403, 404, 422),
)
async def replay_failed(
    webhook_id: uuid.UUID, body: ReplayFailedIn, _admin: AdminUser, container: ContainerDep
) -> ReplayedOut:
    count = await container.webhooks.replay_failed(str(webhook_id), body.since)
    return ReplayedOut(replayed=count)


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/replay",
    response_model=DeliveryOut,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Send one delivery again: same body, same `webhook-id` (admin)",
    responses=problems(401, 403, 404, 422),
)
async def replay_delivery(
    webhook_id: uuid.UUID, delivery_id: uuid.UUID, _admin: AdminUser, container: ContainerDep
) -> DeliveryOut:
    delivery = await container.webhooks.replay(str(webhook_id), str(delivery_id))
    return DeliveryOut.of(delivery)


# The item routes come last: the document lists them after the sub-resources, so a client
# (or the fuzzer) walking it in order deletes the webhook after using it.
@router.get(
    "/{webhook_id}",
    response_model=WebhookOut,
    summary="One webhook endpoint; no secret (admin)",
    responses=problems(401, 403, 404, 422),
)
async def get_webhook(
    webhook_id: uuid.UUID, _admin: AdminUser, container: ContainerDep
) -> WebhookOut:
    return WebhookOut.of(await container.webhooks.get(str(webhook_id)))


@router.delete(
    "/{webhook_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Delete a webhook endpoint and its deliveries log (admin)",
    responses=problems(401, 403, 404, 422),
)
async def delete_webhook(webhook_id: uuid.UUID, _admin: AdminUser, container: ContainerDep) -> None:
    await container.webhooks.delete(str(webhook_id))
