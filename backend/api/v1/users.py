"""/users: the caller's own profile and password; user administration for admins."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response, status

from backend.api.deps import AdminUser, ContainerDep, CurrentUser
from backend.api.openapi import problems
from backend.api.v1.auth import counted
from backend.api.v1.pagination import DEFAULT_LIMIT, Limit, Offset
from backend.api.v1.schemas.users import (
    AdminUserUpdateIn,
    PasswordChangeIn,
    ProfileUpdateIn,
    UserOut,
    UserPageOut,
)

router = APIRouter(prefix="/users", tags=["users"])

UserSort = Literal["created_at", "-created_at", "email", "-email"]


@router.get("/me", response_model=UserOut, summary="The caller", responses=problems(401))
async def me(user: CurrentUser) -> UserOut:
    return UserOut.of(user)


@router.patch(
    "/me",
    response_model=UserOut,
    summary="Change the caller's profile",
    responses=problems(401, 422),
)
async def update_me(body: ProfileUpdateIn, user: CurrentUser, container: ContainerDep) -> UserOut:
    if "full_name" not in body.model_fields_set:
        return UserOut.of(user)
    updated = await container.user_service().update_profile(user.id, body.full_name)
    return UserOut.of(updated)


@router.post(
    "/me/password",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Change the caller's password; every refresh token is revoked",
    responses=problems(400, 401, 422),
)
async def change_password(
    body: PasswordChangeIn, user: CurrentUser, container: ContainerDep
) -> None:
    with counted("password_change"):
        await container.auth_service().change_password(
            user.id, body.current_password, body.new_password
        )


@router.get(
    "",
    response_model=UserPageOut,
    summary="List or search users (admin)",
    responses=problems(401, 403, 422),
)
async def list_users(
    _admin: AdminUser,
    container: ContainerDep,
    q: Annotated[
        str | None, Query(min_length=1, max_length=100, description="In email or name.")
    ] = None,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
    sort: UserSort = "-created_at",
) -> UserPageOut:
    query = q.replace("\x00", "") if q else None  # PostgreSQL refuses NUL in text
    page = await container.user_service().search(query, limit=limit, offset=offset, sort=sort)
    return UserPageOut(
        items=[UserOut.of(u) for u in page.items], total=page.total, limit=limit, offset=offset
    )


@router.get(
    "/{user_id}",
    response_model=UserOut,
    summary="One user (admin)",
    responses=problems(401, 403, 404, 422),
)
async def get_user(user_id: uuid.UUID, _admin: AdminUser, container: ContainerDep) -> UserOut:
    return UserOut.of(await container.user_service().get(str(user_id)))


@router.patch(
    "/{user_id}",
    response_model=UserOut,
    summary="Activate, deactivate, promote or demote a user (admin)",
    responses=problems(401, 403, 404, 409, 422),
)
async def administer_user(
    user_id: uuid.UUID, body: AdminUserUpdateIn, admin: AdminUser, container: ContainerDep
) -> UserOut:
    updated = await container.user_service().administer(
        admin, str(user_id), is_active=body.is_active, role=body.role
    )
    return UserOut.of(updated)
