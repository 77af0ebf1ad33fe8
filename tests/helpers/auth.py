"""Users and credentials for API tests.

`create_user` registers through the real API (admins are then promoted through the app's
own unit of work); `auth_headers` returns a real access token for a fresh user, minted by
the app's token issuer so it costs no bcrypt and no login rate-limit budget.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

import httpx

from backend.domain.users import Role

DEFAULT_PASSWORD = "correct-horse-9"


def _container(client: httpx.AsyncClient) -> Any:
    return client.app.state.container  # type: ignore[attr-defined]


def new_email(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}@example.com"


async def create_user(
    client: httpx.AsyncClient,
    email: str | None = None,
    password: str = DEFAULT_PASSWORD,
    role: str = "customer",
) -> dict[str, Any]:
    """Register a user through POST /auth/register; the User JSON (with its final role)."""
    response = await client.post(
        "/api/v1/auth/register",
        json={"email": email or new_email(role), "password": password},
    )
    assert response.status_code == 201, response.text
    user: dict[str, Any] = response.json()
    if Role(role) is Role.ADMIN:
        async with _container(client).uow() as uow:
            stored = await uow.users.get(user["id"])
            assert stored is not None
            await uow.users.update(replace(stored, role=Role.ADMIN))
            await uow.commit()
        user["role"] = Role.ADMIN.value
    return user


def bearer(client: httpx.AsyncClient, user_id: str) -> dict[str, str]:
    token = _container(client).tokens.issue_access(user_id).token
    return {"Authorization": f"Bearer {token}"}


async def auth_headers(
    client: httpx.AsyncClient, role: str = "customer", email: str | None = None
) -> dict[str, str]:
    """`{"Authorization": "Bearer ..."}` for a fresh user of `role`."""
    user = await create_user(client, email=email, role=role)
    return bearer(client, user["id"])


async def login(
    client: httpx.AsyncClient, email: str, password: str = DEFAULT_PASSWORD
) -> httpx.Response:
    return await client.post("/api/v1/auth/login", json={"email": email, "password": password})


# --------------------------------------------------------------------------- forged tokens
def _b64(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge_token(
    secret: str,
    *,
    sub: str | None = None,
    algorithm: str = "HS256",
    drop: tuple[str, ...] = (),
    ttl: int = 900,
    iat_offset: int = 0,
    **claims: Any,
) -> str:
    """A JWT built by hand (`algorithm="none"` gives an unsigned token), for negative tests."""
    import json
    import time

    from jose import jwt

    now = int(time.time()) + iat_offset
    body: dict[str, Any] = {
        "sub": sub or str(uuid.uuid4()),
        "iat": now,
        "exp": now + ttl,
        "jti": uuid.uuid4().hex,
        "type": "access",
        **claims,
    }
    for name in drop:
        body.pop(name, None)
    if algorithm == "none":
        header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
        return f"{header}.{_b64(json.dumps(body).encode())}."
    return str(jwt.encode(body, secret, algorithm=algorithm))


def tamper(token: str) -> str:
    """Change one claim of a signed token and keep its signature."""
    import base64
    import json

    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = str(uuid.uuid4())
    return f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"
