"""/auth: register, log in (JSON or the OAuth2 form), refresh, log out."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Literal

from fastapi import APIRouter, Cookie, Depends, Form, Response, status
from fastapi.security import OAuth2PasswordRequestForm

from backend.api.deps import ContainerDep, SettingsDep
from backend.api.openapi import problems
from backend.api.v1.schemas.users import (
    LoginIn,
    RefreshIn,
    RegisterIn,
    TokenPairOut,
    UserOut,
)
from backend.core.config import Settings
from backend.core.metrics import AUTH_EVENTS
from backend.domain.errors import NotAuthenticated
from backend.domain.users import (
    AccountLocked,
    EmailTaken,
    InvalidCredentials,
    RefreshTokenReused,
    TokenPair,
)

router = APIRouter(prefix="/auth", tags=["auth"])

REFRESH_COOKIE = "refresh_token"
COOKIE_PATH = "/api/v1/auth"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
MAX_EMAIL_LENGTH = 320


class PasswordForm(OAuth2PasswordRequestForm):
    """The OAuth2 password grant's form, saying what FastAPI does anyway: an empty field is
    a missing one (422), so the document asks for at least one character."""

    def __init__(
        self,
        *,
        username: Annotated[str, Form(min_length=1)],
        password: Annotated[str, Form(min_length=1, json_schema_extra={"format": "password"})],
        # Not `| SkipJsonSchema[None]`: a union would put its member tags in the error's loc.
        # The top-level enum keeps the document from offering null (sent as "null" in a form).
        grant_type: Annotated[
            Literal["password"] | None, Form(json_schema_extra={"enum": ["password"]})
        ] = None,
        scope: Annotated[str, Form()] = "",
    ) -> None:
        super().__init__(username=username, password=password, grant_type=grant_type, scope=scope)


RefreshCookie = Annotated[
    str | None,
    Cookie(alias=REFRESH_COOKIE, description="Set by login; HttpOnly, path /api/v1/auth."),
]


@contextmanager
def counted(event: str) -> Iterator[None]:
    """Count the outcome of one auth event in `auth_events_total`."""
    outcome = "error"  # anything not named below, including crashes and outages
    try:
        yield
        outcome = "success"
    except AccountLocked:
        outcome = "locked"
        raise
    except RefreshTokenReused:
        outcome = "reuse"
        raise
    except EmailTaken:
        outcome = "conflict"
        raise
    except NotAuthenticated:
        outcome = "failure"
        raise
    finally:
        AUTH_EVENTS.labels(event=event, outcome=outcome).inc()


def _issue(response: Response, pair: TokenPair, settings: Settings) -> TokenPairOut:
    response.headers.update(NO_STORE)
    response.set_cookie(
        REFRESH_COOKIE,
        pair.refresh_token,
        max_age=settings.refresh_token_ttl_seconds,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=settings.is_production,
    )
    return TokenPairOut(
        access_token=pair.access_token,
        refresh_token=pair.refresh_token,
        expires_in=pair.expires_in,
    )


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    response_model=UserOut,
    summary="Create a customer account",
    responses=problems(409, 422),
)
async def register(body: RegisterIn, container: ContainerDep, response: Response) -> UserOut:
    with counted("register"):
        user = await container.auth_service().register(body.email, body.password, body.full_name)
    response.headers["Location"] = f"/api/v1/users/{user.id}"
    return UserOut.of(user)


@router.post(
    "/login",
    response_model=TokenPairOut,
    summary="Log in: an access token and a refresh token (also set as a cookie)",
    responses=problems(401, 422, 429),
)
async def login(
    body: LoginIn, container: ContainerDep, settings: SettingsDep, response: Response
) -> TokenPairOut:
    with counted("login"):
        pair = await container.auth_service().login(body.email, body.password)
    return _issue(response, pair, settings)


@router.post(
    "/token",
    response_model=TokenPairOut,
    summary="OAuth2 password flow (the docs' Authorize button); `username` is the email",
    responses=problems(401, 422, 429),
)
async def token(
    form: Annotated[PasswordForm, Depends()],
    container: ContainerDep,
    settings: SettingsDep,
    response: Response,
) -> TokenPairOut:
    with counted("token"):
        if "\x00" in form.username or len(form.username) > MAX_EMAIL_LENGTH:
            raise InvalidCredentials()  # no such account can exist; PostgreSQL refuses NUL
        pair = await container.auth_service().login(form.username, form.password)
    return _issue(response, pair, settings)


@router.post(
    "/refresh",
    response_model=TokenPairOut,
    summary="Rotate a refresh token (body or cookie) into a new token pair",
    responses=problems(401, 422),
)
async def refresh(
    container: ContainerDep,
    settings: SettingsDep,
    response: Response,
    cookie: RefreshCookie = None,
    body: RefreshIn | None = None,
) -> TokenPairOut:
    raw = (body.refresh_token if body else None) or cookie
    with counted("refresh"):
        if not raw:
            raise NotAuthenticated("Send the refresh token in the body or the cookie.")
        pair = await container.auth_service().refresh(raw)
    return _issue(response, pair, settings)


@router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Revoke the refresh token's family and clear the cookie",
    responses=problems(422),
)
async def logout(
    container: ContainerDep,
    settings: SettingsDep,
    response: Response,
    cookie: RefreshCookie = None,
    body: RefreshIn | None = None,
) -> None:
    raw = (body.refresh_token if body else None) or cookie
    with counted("logout"):
        await container.auth_service().logout(raw)
    response.headers.update(NO_STORE)
    response.delete_cookie(
        REFRESH_COOKIE,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=settings.is_production,
    )
