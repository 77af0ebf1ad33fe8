"""The baselines `make bench` measures the API against, served by uvicorn with the API's flags
(`uvicorn --factory bench.baselines:create_app`):

(a) GET /bare: a bare ASGI callable answering a fixed JSON body;
(c) GET /api/v1/products/{id}: a bare FastAPI route returning the product model from a dict;
(d) GET /api/v1/orders/{id}: a bare FastAPI route doing one asyncpg fetchrow by primary key;
(h) POST /api/v1/orders: a bare FastAPI route doing one conditional UPDATE in a transaction.

Configured by BENCH_BASELINE_DSN (a plain postgresql:// DSN of the bench database) and
BENCH_BASELINE_PRODUCT (the product as the API serves it, JSON).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from pydantic import BaseModel, Field

from backend.api.v1.schemas.products import ProductOut

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

BARE_BODY = b'{"status":"ok"}'
POOL_SIZE = 20  # the API's DB_POOL_SIZE default


class LineIn(BaseModel):
    product_id: uuid.UUID
    quantity: int = Field(ge=1, le=1000)


class OrderIn(BaseModel):
    items: list[LineIn] = Field(min_length=1, max_length=50)


async def bare_asgi(scope: Scope, receive: Receive, send: Send) -> None:
    """(a): no framework at all."""
    headers = [(b"content-type", b"application/json"), (b"content-length", b"15")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": BARE_BODY})


def fastapi_baselines(dsn: str, product: dict[str, Any]) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.pool = await asyncpg.create_pool(dsn, min_size=POOL_SIZE, max_size=POOL_SIZE)
        try:
            yield
        finally:
            await app.state.pool.close()

    app = FastAPI(lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/api/v1/products/{product_id}", response_model=ProductOut)
    async def product_from_dict(product_id: uuid.UUID) -> ProductOut:  # (c)
        return ProductOut(**product)

    @app.get("/api/v1/orders/{order_id}")
    async def one_fetchrow(order_id: uuid.UUID, request: Request) -> dict[str, Any]:  # (d)
        row = await request.app.state.pool.fetchrow("SELECT * FROM orders WHERE id = $1", order_id)
        return dict(row) if row is not None else {}

    @app.post("/api/v1/orders", status_code=201)
    async def one_conditional_update(body: OrderIn, request: Request) -> dict[str, int]:  # (h)
        line = body.items[0]
        async with request.app.state.pool.acquire() as conn, conn.transaction():
            status = await conn.execute(
                "UPDATE products SET stock = stock - $2 WHERE id = $1 AND stock >= $2",
                line.product_id,
                line.quantity,
            )
        return {"updated": int(status.rsplit(" ", 1)[-1])}

    return app


def create_app() -> ASGIApp:
    dsn = os.environ["BENCH_BASELINE_DSN"]
    product = json.loads(os.environ["BENCH_BASELINE_PRODUCT"])
    framework = fastapi_baselines(dsn, product)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/bare":
            await bare_asgi(scope, receive, send)
        else:
            await framework(scope, receive, send)

    return app
