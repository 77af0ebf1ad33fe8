"""/products: the catalogue. Anyone reads active products; admins write.

Reads are served from the tiered cache. Every product response carries
`ETag: "<version>"`; `If-None-Match` on GET answers 304, a stale `If-Match` on a write 412.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from cachetools import LRUCache
from fastapi import APIRouter, Query, Request, Response, status
from starlette.types import Scope

from backend.api.deps import AdminUser, ContainerDep, OptionalUser, container_of
from backend.api.etags import IF_NONE_MATCH_DOC, IfMatch, etag, if_match_versions, none_match
from backend.api.fast_reads import Headers, Serialise, VersionedRead
from backend.api.openapi import problems
from backend.api.v1.pagination import DEFAULT_LIMIT, Limit, Offset
from backend.api.v1.schemas.common import NUL_FREE
from backend.api.v1.schemas.products import (
    PriceIn,
    ProductCreateIn,
    ProductOut,
    ProductPageOut,
    ProductUpdateIn,
    StockAdjustmentIn,
)
from backend.domain.catalog import Product, ProductQuery, SortField
from backend.domain.errors import NotAuthenticated, PermissionDenied
from backend.domain.users import User

router = APIRouter(prefix="/products", tags=["products"])

ProductSort = Literal["name", "-name", "price", "-price", "created_at", "-created_at"]
JSON = "application/json"
# Clients may keep a copy but must revalidate it (cheaply, with If-None-Match) before use.
REVALIDATE = "no-cache"
ETAG_HEADER = {
    "ETag": {"description": 'The product version, e.g. `"3"`', "schema": {"type": "string"}}
}


# The JSON body of each product object the cache hands out, serialised once: the cache returns
# the same object until the product changes (then a new one), so identity tells whether a
# body is current. Bounded like the cache's L1 (docs/adr/0019).
_served_bodies: LRUCache[str, tuple[Product, bytes]] = LRUCache(maxsize=10_000)


def product_body(product: Product) -> bytes:
    served = _served_bodies.get(product.id)
    if served is not None and served[0] is product:
        return served[1]
    body = ProductOut.of(product).model_dump_json().encode()
    _served_bodies[product.id] = (product, body)
    return body


def product_response(
    product: Product, status_code: int = 200, body: bytes | None = None, **headers: str
) -> Response:
    return Response(
        ProductOut.of(product).model_dump_json() if body is None else body,
        status_code=status_code,
        media_type=JSON,
        headers={"ETag": etag(product.version), "Cache-Control": REVALIDATE, **headers},
    )


class CachedProductRead(VersionedRead):
    """`GET /products/{product_id}` for a caller without a token, answered by the HTTP edge
    before FastAPI (docs/adr/0019): the same product, body, ETag, 304 and problems as
    `get_product` below, without routing, dependency resolution and the response machinery,
    which cost more than the cached read itself. It declines (and `get_product` answers) a
    request with an `Authorization` header: an admin may see an inactive product, a bad
    token is a 401."""

    extra_headers = ((b"cache-control", REVALIDATE.encode()),)

    def __init__(self, api_prefix: str) -> None:
        super().__init__(f"{api_prefix}/products/", "product_id")

    def accepts(self, headers: Headers) -> bool:
        return b"authorization" not in headers

    async def read(
        self, container: Any, scope: Scope, resource_id: str, headers: Headers
    ) -> tuple[int, Serialise]:
        product = await container.catalog.get(resource_id)
        return product.version, lambda: product_body(product)


def _is_admin(user: User | None) -> bool:
    return user is not None and user.is_admin


# --------------------------------------------------------------------------- reads
@router.get(
    "",
    response_model=ProductPageOut,
    summary="List products (active only, unless an admin asks for inactive ones too)",
    responses=problems(401, 403, 422),
)
async def list_products(
    container: ContainerDep,
    user: OptionalUser,
    q: Annotated[
        str | None,
        Query(min_length=1, max_length=100, description="Text in the name, SKU or description."),
        *NUL_FREE,
    ] = None,
    min_price: Annotated[PriceIn | None, Query()] = None,
    max_price: Annotated[PriceIn | None, Query()] = None,
    in_stock: Annotated[
        bool, Query(description="true: only products with stock > 0 (false: no filter).")
    ] = False,
    include_inactive: Annotated[bool, Query(description="Admins only.")] = False,
    sort: Annotated[ProductSort, Query(description="A field; `-` for descending.")] = "name",
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
) -> Any:
    if include_inactive and not _is_admin(user):
        if user is None:
            raise NotAuthenticated("include_inactive=true needs an administrator's token.")
        raise PermissionDenied("Only administrators may list inactive products.")
    query = ProductQuery(
        q=q,
        min_price=min_price,
        max_price=max_price,
        in_stock=in_stock,
        include_inactive=include_inactive,
        sort=SortField(sort.lstrip("-")),
        descending=sort.startswith("-"),
        limit=limit,
        offset=offset,
    )
    page = await container.catalog.list(query)
    return Response(
        ProductPageOut.of(page).model_dump_json(),
        media_type=JSON,
        headers={"Cache-Control": REVALIDATE},
    )


@router.get(
    "/{product_id}",
    response_model=ProductOut,
    summary="One product (inactive ones: admins only)",
    responses={
        200: {"headers": ETAG_HEADER},
        304: {"description": "Not modified: the `If-None-Match` ETag is current"},
        **problems(400, 401, 404, 422),
    },
    openapi_extra=IF_NONE_MATCH_DOC,
)
async def get_product(
    product_id: uuid.UUID,
    request: Request,
    user: OptionalUser,
) -> Any:
    # The container and If-None-Match read from the request, not declared as parameters: on
    # the hottest route FastAPI's resolution of each costs more than the cached read itself
    # (make bench scenario 1, docs/adr/0013). The header is documented by IF_NONE_MATCH_DOC.
    catalog = container_of(request).catalog
    product = await catalog.get(str(product_id), include_inactive=_is_admin(user))
    if none_match(request.headers.get("if-none-match"), product.version):
        return Response(
            status_code=status.HTTP_304_NOT_MODIFIED,
            headers={"ETag": etag(product.version), "Cache-Control": REVALIDATE},
        )
    return product_response(product, body=product_body(product))


# --------------------------------------------------------------------------- writes (admin)
@router.post(
    "",
    response_model=ProductOut,
    status_code=status.HTTP_201_CREATED,
    summary="Create a product (admin)",
    responses={201: {"headers": ETAG_HEADER}, **problems(401, 403, 409, 422)},
)
async def create_product(body: ProductCreateIn, _admin: AdminUser, container: ContainerDep) -> Any:
    product = await container.catalog.create(
        sku=body.sku,
        name=body.name,
        description=body.description,
        price=body.price,
        stock=body.stock,
    )
    return product_response(product, 201, Location=f"/api/v1/products/{product.id}")


@router.patch(
    "/{product_id}",
    response_model=ProductOut,
    summary="Change a product's name, description, price or active flag (admin)",
    responses={200: {"headers": ETAG_HEADER}, **problems(401, 403, 404, 412, 422)},
)
async def update_product(
    product_id: uuid.UUID,
    body: ProductUpdateIn,
    _admin: AdminUser,
    container: ContainerDep,
    if_match: IfMatch = None,
) -> Any:
    product = await container.catalog.update(
        str(product_id), body.changes(), expected_version=if_match_versions(if_match)
    )
    return product_response(product)


@router.delete(
    "/{product_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Deactivate a product (admin; soft: past orders keep their snapshot)",
    responses=problems(401, 403, 404, 412, 422),
)
async def delete_product(
    product_id: uuid.UUID, _admin: AdminUser, container: ContainerDep, if_match: IfMatch = None
) -> None:
    await container.catalog.deactivate(
        str(product_id), expected_version=if_match_versions(if_match)
    )


@router.post(
    "/{product_id}/stock",
    response_model=ProductOut,
    summary="Adjust the stock by a delta, with a reason (admin; recorded)",
    responses={200: {"headers": ETAG_HEADER}, **problems(401, 403, 404, 409, 422)},
)
async def adjust_stock(
    product_id: uuid.UUID, body: StockAdjustmentIn, admin: AdminUser, container: ContainerDep
) -> Any:
    product = await container.catalog.adjust_stock(
        str(product_id), body.delta, body.reason, actor_id=admin.id
    )
    return product_response(product)
