"""/orders: placement (idempotent), reads with ownership, the customer's and admin's workflow."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Header, Query, Response, status
from fastapi.responses import JSONResponse
from fastapi.security.utils import get_authorization_scheme_param
from starlette.types import Scope

from backend.api.deps import AdminUser, ContainerDep, CurrentUser, user_of_token
from backend.api.etags import IfMatch, IfNoneMatch, etag, if_match_versions, none_match
from backend.api.fast_reads import Headers, Serialise, VersionedRead
from backend.api.openapi import problems
from backend.api.v1.pagination import DEFAULT_LIMIT, Limit, Offset
from backend.api.v1.schemas.orders import (
    CancelIn,
    HistoryEntryOut,
    OrderCreateIn,
    OrderOut,
    OrderPageOut,
    OrderUpdateIn,
    RejectIn,
    UtcDateTime,
    ValidationStartedOut,
)
from backend.core.metrics import INSUFFICIENT_STOCK
from backend.domain.orders import (
    InsufficientStock,
    LineRequest,
    Order,
    OrderQuery,
    OrderStatus,
    PlaceOrderCommand,
    StoredResponse,
)
from backend.services.orders import Idempotency

router = APIRouter(prefix="/orders", tags=["orders"])

OrderSort = Literal["created_at", "-created_at", "total", "-total"]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="Retry-safe creation: the same key and body within 24 h replay the "
        "first response (with `Idempotent-Replayed: true`).",
    ),
]


# --------------------------------------------------------------------------- helpers
def location(order_id: str) -> str:
    return f"/api/v1/orders/{order_id}"


def order_response(order: Order, response: Response) -> OrderOut:
    response.headers["ETag"] = etag(order.version)
    return OrderOut.of(order)


def stored_response(order: Order) -> StoredResponse:
    body = OrderOut.of(order).model_dump(mode="json")
    return StoredResponse(status.HTTP_201_CREATED, body, location(order.id))


def replay(stored: StoredResponse) -> JSONResponse:
    headers = {"Idempotent-Replayed": "true"}
    if stored.location:
        headers["Location"] = stored.location
    if "version" in stored.body:
        headers["ETag"] = etag(int(stored.body["version"]))
    return JSONResponse(stored.body, status_code=stored.status_code, headers=headers)


# --------------------------------------------------------------------------- placement
@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=OrderOut,
    summary="Place an order: stock for every line is reserved, or none is",
    responses={
        **problems(401, 409, 422),
        201: {"headers": {"Location": {"schema": {"type": "string"}}}},
    },
)
async def place_order(
    body: OrderCreateIn,
    user: CurrentUser,
    container: ContainerDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    command = PlaceOrderCommand(
        user_id=user.id,
        items=tuple(LineRequest(str(i.product_id), i.quantity) for i in body.items),
        shipping_address=body.shipping_address,
        note=body.note,
    )
    idempotency = None
    if idempotency_key is not None:
        idempotency = Idempotency(idempotency_key, stored_response)
    try:
        placement = await container.orders.place(command, idempotency)
    except InsufficientStock:
        INSUFFICIENT_STOCK.inc()
        raise
    if placement.replayed and placement.response is not None:
        return replay(placement.response)
    assert placement.order is not None
    response.headers["Location"] = location(placement.order.id)
    return order_response(placement.order, response)


# --------------------------------------------------------------------------- reads
class OwnOrderRead(VersionedRead):
    """`GET /orders/{order_id}` with a bearer token, answered by the HTTP edge before FastAPI
    (docs/adr/0019): the same user check, visibility, body, ETag, 304 and problems as
    `get_order` below, without routing, dependency resolution and response validation. It
    declines (and `get_order` answers) a request without `Authorization: Bearer <token>`."""

    def __init__(self, api_prefix: str) -> None:
        super().__init__(f"{api_prefix}/orders/", "order_id")

    @staticmethod
    def _token(headers: Headers) -> str | None:
        scheme, token = get_authorization_scheme_param(headers.get(b"authorization"))
        return token if scheme.lower() == "bearer" and token else None

    def accepts(self, headers: Headers) -> bool:
        return self._token(headers) is not None

    async def read(
        self, container: Any, scope: Scope, resource_id: str, headers: Headers
    ) -> tuple[int, Serialise]:
        user = await user_of_token(container, scope, self._token(headers) or "")
        order = await container.orders.get(resource_id, user)
        return order.version, lambda: OrderOut.of(order).model_dump_json().encode()


@router.get(
    "",
    response_model=OrderPageOut,
    summary="List orders: your own (admins: everyone's, or one user's with `user_id`)",
    responses=problems(401, 403, 422),
)
async def list_orders(
    user: CurrentUser,
    container: ContainerDep,
    status_filter: Annotated[OrderStatus | None, Query(alias="status")] = None,
    created_from: Annotated[UtcDateTime | None, Query()] = None,
    created_to: Annotated[UtcDateTime | None, Query()] = None,
    user_id: Annotated[uuid.UUID | None, Query(description="Admins only.")] = None,
    sort: OrderSort = "-created_at",
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
) -> OrderPageOut:
    query = OrderQuery(
        user_id=str(user_id) if user_id else None,
        status=status_filter,
        created_from=created_from,
        created_to=created_to,
        sort=sort.removeprefix("-"),
        descending=sort.startswith("-"),
        limit=limit,
        offset=offset,
    )
    page = await container.orders.list(user, query)
    return OrderPageOut(
        items=[OrderOut.of(o) for o in page.items], total=page.total, limit=limit, offset=offset
    )


@router.get(
    "/{order_id}",
    response_model=OrderOut,
    summary="One order (yours, or any for admins), with its ETag",
    responses={**problems(400, 401, 404, 422), 304: {"description": "`If-None-Match` matched"}},
)
async def get_order(
    order_id: uuid.UUID,
    user: CurrentUser,
    container: ContainerDep,
    response: Response,
    if_none_match: IfNoneMatch = None,
) -> Any:
    order = await container.orders.get(str(order_id), user)
    if none_match(if_none_match, order.version):
        return Response(
            status_code=status.HTTP_304_NOT_MODIFIED, headers={"ETag": etag(order.version)}
        )
    return order_response(order, response)


@router.get(
    "/{order_id}/history",
    response_model=list[HistoryEntryOut],
    summary="Status history, oldest first (the first entry is the placement: null -> pending)",
    responses=problems(401, 404, 422),
)
async def order_history(
    order_id: uuid.UUID, user: CurrentUser, container: ContainerDep
) -> list[HistoryEntryOut]:
    changes = await container.orders.history(str(order_id), user)
    return [HistoryEntryOut.of(change) for change in changes]


# --------------------------------------------------------------------------- changes
@router.patch(
    "/{order_id}",
    response_model=OrderOut,
    summary="Change shipping address or note while pending or validated",
    responses=problems(401, 404, 409, 412, 422),
)
async def update_order(
    order_id: uuid.UUID,
    body: OrderUpdateIn,
    user: CurrentUser,
    container: ContainerDep,
    response: Response,
    if_match: IfMatch = None,
) -> OrderOut:
    changes = body.model_dump(include=body.model_fields_set)
    order = await container.orders.update_details(
        str(order_id), user, changes, expected_version=if_match_versions(if_match)
    )
    return order_response(order, response)


@router.post(
    "/{order_id}/cancel",
    response_model=OrderOut,
    summary="Cancel a pending or validated order (owner or admin); its stock is released",
    responses=problems(401, 404, 409, 422),
)
async def cancel_order(
    order_id: uuid.UUID,
    user: CurrentUser,
    container: ContainerDep,
    response: Response,
    body: Annotated[CancelIn | None, Body()] = None,
) -> OrderOut:
    order = await container.order_workflow.cancel(
        str(order_id), user, reason=body.reason if body else None
    )
    return order_response(order, response)


@router.post(
    "/{order_id}/approve",
    response_model=OrderOut,
    summary="Approve a validated order (admin)",
    responses=problems(401, 403, 404, 409, 422),
)
async def approve_order(
    order_id: uuid.UUID, admin: AdminUser, container: ContainerDep, response: Response
) -> OrderOut:
    order = await container.order_workflow.approve(str(order_id), admin)
    return order_response(order, response)


@router.post(
    "/{order_id}/reject",
    response_model=OrderOut,
    summary="Reject a pending or validated order (admin); its stock is released",
    responses=problems(401, 403, 404, 409, 422),
)
async def reject_order(
    order_id: uuid.UUID,
    body: RejectIn,
    admin: AdminUser,
    container: ContainerDep,
    response: Response,
) -> OrderOut:
    order = await container.order_workflow.reject(str(order_id), admin, reason=body.reason)
    return order_response(order, response)


@router.post(
    "/{order_id}/validate",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ValidationStartedOut,
    summary="Start validating a pending order now (admin); the worker does the work",
    responses=problems(401, 403, 404, 409, 422, 503),
)
async def validate_order(
    order_id: uuid.UUID, admin: AdminUser, container: ContainerDep
) -> ValidationStartedOut:
    await container.order_workflow.request_validation(str(order_id), admin)
    return ValidationStartedOut()
