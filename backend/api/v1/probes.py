"""Liveness and readiness probes. No auth, never rate limited."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from backend.api.deps import ContainerDep

router = APIRouter(tags=["probes"])


class Health(BaseModel):
    status: Literal["ok"]


class CheckResult(BaseModel):
    status: Literal["ok", "error", "skipped"]
    latency_ms: float | None = None
    error: str | None = None


class Readiness(BaseModel):
    status: Literal["ready", "unavailable"]
    checks: dict[str, CheckResult]


@router.get("/health", response_model=Health, summary="Liveness: the process runs")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readiness",
    response_model=Readiness,
    summary="Readiness: database, Redis and broker answer",
    responses={503: {"model": Readiness, "description": "A dependency failed its check"}},
)
async def readiness(container: ContainerDep) -> Any:
    checks = await container.readiness()
    ready = all(check["status"] != "error" for check in checks.values())
    body = {"status": "ready" if ready else "unavailable", "checks": checks}
    return JSONResponse(body, status_code=200 if ready else 503)
