"""GET /products/{id} served from the L1 cache, against a bare FastAPI route, in process.

The subject is the real app (every middleware, the optional-user dependency, the catalogue
service, the tiered cache, the ETag) with the product already in L1, so no database or
Redis work happens per request. The baseline is a bare FastAPI app whose route returns the
same Pydantic model built from a dict. Rounds alternate (bench.harness.compare).

ratio = cached product reads per second / bare reads per second (target >= 0.6).
Rate limiting is off in both: it is measured by its own scenario, and it would refuse
this many anonymous requests.
"""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from pathlib import Path
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from backend.api.app import create_app
from backend.api.v1.schemas.products import ProductOut
from backend.core.config import Settings
from bench.harness import compare, migrate

NAME = "GET /products/{id} from L1 vs bare FastAPI (same model)"
TARGET = 0.6


def bare_app(data: dict[str, Any]) -> FastAPI:
    app = FastAPI()

    @app.get("/api/v1/products/{product_id}", response_model=ProductOut)
    async def get_product(product_id: uuid.UUID) -> ProductOut:
        return ProductOut(**data)

    return app


async def measure() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        database_url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.sqlite'}"
        await asyncio.to_thread(migrate, database_url)
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            environment="test",
            log_level="WARNING",
            database_url=database_url,
            celery_broker_dir=tmp,
            rate_limit_enabled=False,
        )
        app = create_app(settings)
        async with LifespanManager(app) as full:
            container = app.state.container
            product = await container.catalog.create(
                sku="BENCH-1", name="Green tea", description="100 g", price="4.50", stock=10
            )
            url = f"/api/v1/products/{product.id}"
            data = ProductOut.of(product).model_dump()
            async with LifespanManager(bare_app(data)) as bare:
                full_client = httpx.AsyncClient(
                    transport=httpx.ASGITransport(full.app), base_url="http://b"
                )
                bare_client = httpx.AsyncClient(
                    transport=httpx.ASGITransport(bare.app), base_url="http://b"
                )
                async with full_client, bare_client:
                    served = await full_client.get(url)  # warms L1
                    expected = (await bare_client.get(url)).json()
                    assert served.status_code == 200 and served.json() == expected, served.text
                    numbers = await compare(
                        lambda: bare_client.get(url), lambda: full_client.get(url)
                    )
    return {"name": NAME, "target": TARGET, **numbers}


def run() -> dict[str, Any]:
    return asyncio.run(measure())
