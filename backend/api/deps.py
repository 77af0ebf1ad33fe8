"""Typed dependencies: the container and the caller (routes reach the database only through
the Container's services, ADR 0014)."""

from __future__ import annotations

from typing import Annotated

import structlog
from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from starlette.types import Scope

from backend.bootstrap import Container
from backend.core.config import Settings
from backend.domain.errors import NotAuthenticated, PermissionDenied
from backend.domain.users import User


# `async def` although nothing is awaited: FastAPI runs a plain `def` dependency in the
# thread pool, a hop that cost more than the whole cached product read (make bench scenario 1).
async def get_container(request: Request) -> Container:
    return container_of(request)


def container_of(request: Request) -> Container:
    """The container built in the lifespan (a plain call where a dependency level would
    cost more than the work: every dependency is one more `solve_dependencies` pass)."""
    container: Container = request.app.state.container
    return container


async def get_settings_dep(container: Annotated[Container, Depends(get_container)]) -> Settings:
    return container.settings


ContainerDep = Annotated[Container, Depends(get_container)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


# --- identity: who is calling ------------------------------------------------------------
class BearerUser(OAuth2PasswordBearer):
    """The caller named by `Authorization: Bearer <access token>`, or None without one; a
    token that is sent but not valid is a 401.

    A security scheme (it is what OpenAPI and Swagger's "Authorize" show) that also looks the
    user up: one dependency, not a token dependency plus a user dependency, because every
    dependency level is one more resolution pass on every request (make bench scenario 1).
    """

    def __init__(self) -> None:
        # auto_error=False: a missing token is our own 401 problem (or None where optional).
        super().__init__(
            tokenUrl="/api/v1/auth/token", scheme_name="OAuth2PasswordBearer", auto_error=False
        )

    async def __call__(self, request: Request) -> User | None:  # type: ignore[override]
        token = await super().__call__(request)
        if token is None:
            return None
        return await user_of_token(container_of(request), request.scope, token)


async def user_of_token(container: Container, scope: Scope, token: str) -> User:
    """The live user behind an access token (a DomainError when there is none), known from
    here on to the access log line (the HTTP edge reads the scope state) and to every log line
    of the request."""
    user = await container.auth_service().user_for_access_token(token)
    scope.setdefault("state", {})["user_id"] = user.id
    structlog.contextvars.bind_contextvars(user_id=user.id)
    return user


optional_user = BearerUser()
OptionalUser = Annotated[User | None, Depends(optional_user)]


async def current_user(user: OptionalUser) -> User:
    if user is None:
        raise NotAuthenticated(
            "This route needs an access token: send `Authorization: Bearer <token>`."
        )
    return user


CurrentUser = Annotated[User, Depends(current_user)]


async def admin_user(user: CurrentUser) -> User:
    if not user.is_admin:
        raise PermissionDenied("Only administrators may do this.")
    return user


AdminUser = Annotated[User, Depends(admin_user)]
