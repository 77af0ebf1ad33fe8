"""The full middleware stack on /api/v1/health against a bare FastAPI route, in process."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from backend.api.app import create_app
from backend.core.config import Settings
from bench.harness import compare


def bare_app() -> FastAPI:
    app = FastAPI()

    @app.get("/api/v1/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


async def measure() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            environment="test",
            log_level="WARNING",
            database_url=f"sqlite+aiosqlite:///{Path(tmp) / 'bench.sqlite'}",
            celery_broker_dir=tmp,
            rate_limit_enabled=False,
        )
        app = create_app(settings)
        async with LifespanManager(app) as full, LifespanManager(bare_app()) as bare:
            full_client = httpx.AsyncClient(
                transport=httpx.ASGITransport(full.app), base_url="http://b"
            )
            bare_client = httpx.AsyncClient(
                transport=httpx.ASGITransport(bare.app), base_url="http://b"
            )
            async with full_client, bare_client:
                numbers = await compare(
                    lambda: bare_client.get("/api/v1/health"),
                    lambda: full_client.get("/api/v1/health"),
                )
    return {"name": "GET /health, full stack vs bare FastAPI", "target": None, **numbers}


def run() -> dict[str, Any]:
    return asyncio.run(measure())
