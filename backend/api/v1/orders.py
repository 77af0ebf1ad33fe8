"""/orders: placement (idempotent), reads with ownership, the customer's and admin's workflow."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Header, Query, Response, status
from fastapi.responses import JSONResponse
from fastapi.security.utils import get_authorization_scheme_param
from starlette.types import Receive, Scope, Send

from backend.api.deps import AdminUser, ContainerDep, CurrentUser, user_of_token
from backend.api.errors import domain_error_response
from backend.api.etags import IfMatch, IfNoneMatch, etag, if_match_versions, none_match
from backend.api.middleware.edge import CANONICAL_UUID, container_in
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
from backend.domain.errors import DomainError
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
class OwnOrderRead:
    """`GET /orders/{order_id}` with a bearer token, answered by the HTTP edge before FastAPI
    (docs/adr/0019): the same user check, visibility, body, ETag, 304 and problems as
    `get_order` below, without routing, dependency resolution and response validation. It
    declines (and `get_order` answers) anything else: no `Authorization: Bearer <token>`, an
    id not in the canonical form, another method."""

    def __init__(self, api_prefix: str) -> None:
        self.prefix = f"{api_prefix}/orders/"
        self.template = f"{self.prefix}{{order_id}}"

    def matches(self, scope: Scope) -> bool:
        path: str = scope["path"]
        return (
            scope["method"] == "GET"
            and path.startswith(self.prefix)
            and CANONICAL_UUID.fullmatch(path, len(self.prefix)) is not None
        )

    async def answer(self, scope: Scope, receive: Receive, send: Send) -> bool:
        authorization: str | None = None
        if_none_match: str | None = None
        for name, value in scope["headers"]:
            if name == b"authorization" and authorization is None:
                authorization = value.decode("latin-1")
            elif name == b"if-none-match" and if_none_match is None:
                if_none_match = value.decode("latin-1")
        scheme, token = get_authorization_scheme_param(authorization)
        container = container_in(scope)
        if scheme.lower() != "bearer" or not token or container is None:
            return False
        try:
            user = await user_of_token(container, scope, token)
            order = await container.orders.get(scope["path"][len(self.prefix) :], user)
            not_modified = none_match(if_none_match, order.version)
        except DomainError as error:
            await domain_error_response(scope, error)(scope, receive, send)
            return True
        headers = [(b"etag", etag(order.version).encode())]
        body = b""
        if not_modified:
            status_code = status.HTTP_304_NOT_MODIFIED
        else:
            status_code, body = status.HTTP_200_OK, OrderOut.of(order).model_dump_json().encode()
            headers = [(b"content-length", b"%d" % len(body)), (b"content-type", JSON), *headers]
        await send({"type": "http.response.start", "status": status_code, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return True


JSON = b"application/json"


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
