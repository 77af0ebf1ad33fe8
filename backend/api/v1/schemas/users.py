"""Request and response bodies of /auth and /users."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, EmailStr, Field, StringConstraints
from pydantic_core import PydanticCustomError

from backend.api.v1.schemas.common import NOT_BLANK, JsonBool, PartialUpdate, StrictModel
from backend.domain.users import PASSWORD_MAX_BYTES, PASSWORD_MIN_CHARS, Role, User


def _password_policy(value: str) -> str:
    # Field(max_length) counts characters; bcrypt's limit is in bytes (multi-byte text).
    if len(value.encode("utf-8")) > PASSWORD_MAX_BYTES:
        raise PydanticCustomError(
            "password_too_long",
            "Password must be at most {max_bytes} bytes in UTF-8",
            {"max_bytes": PASSWORD_MAX_BYTES},
        )
    return value


NewPassword = Annotated[
    str,
    Field(
        min_length=PASSWORD_MIN_CHARS,
        max_length=PASSWORD_MAX_BYTES,
        description=f"{PASSWORD_MIN_CHARS} characters to {PASSWORD_MAX_BYTES} bytes in UTF-8.",
        examples=["correct-horse-9"],
    ),
    AfterValidator(_password_policy),
]
# What we accept when checking a password: never rejected for its shape (that would leak
# the policy at login), only bounded so a huge body cannot be hashed.
GivenPassword = Annotated[str, Field(min_length=1, max_length=1024)]
FullName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), *NOT_BLANK
]
Email = Annotated[
    EmailStr,
    Field(
        examples=["ada@example.com"],
        description="A deliverable address: special-use domains (`.test`, `.invalid`, "
        "`.localhost`, `.local`, ...) are refused.",
    ),
]


class RegisterIn(StrictModel):
    email: Email
    password: NewPassword
    full_name: FullName | None = None


class LoginIn(StrictModel):
    email: Email
    password: GivenPassword


class RefreshIn(StrictModel):
    refresh_token: Annotated[str, Field(min_length=1, max_length=512)] | None = Field(
        default=None, description="Optional when the `refresh_token` cookie is sent."
    )


class TokenPairOut(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - a scheme name, not a secret
    expires_in: int = Field(description="Seconds until the access token expires.")


class UserOut(BaseModel):
    id: str = Field(examples=["5f0c7d6e-8a43-4b53-9a3c-2b8c35d1c9d4"])
    email: str
    full_name: str | None
    role: Role
    is_active: bool
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(
            id=user.id,
            email=user.email,
            full_name=user.full_name,
            role=user.role,
            is_active=user.is_active,
            created_at=user.created_at,
        )


class UserPageOut(BaseModel):
    items: list[UserOut]
    total: int
    limit: int
    offset: int


class ProfileUpdateIn(PartialUpdate):
    full_name: FullName | None = Field(default=None, description="null clears the name.")


class PasswordChangeIn(StrictModel):
    current_password: GivenPassword
    new_password: NewPassword


class AdminUserUpdateIn(PartialUpdate):
    is_active: JsonBool | None = None
    role: Role | None = None
