"""JWT access tokens (python-jose, HS256 pinned) and opaque refresh tokens."""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from cachetools import LRUCache
from jose import JWTError, jwt

from backend.domain.ports import Clock
from backend.domain.users import AccessClaims, IssuedAccessToken, TokenInvalid

ALGORITHM = "HS256"
ACCESS = "access"
REQUIRED_CLAIMS = ("exp", "iat", "sub", "jti", "type")
# Every verification stays on (an `aud` we did not set is refused too); these must be present.
DECODE_OPTIONS: dict[str, Any] = {
    f"require_{claim}": True for claim in ("exp", "iat", "sub", "jti")
} | {"leeway": 0}
REFRESH_TOKEN_BYTES = 32  # 256 bits
# Access tokens verified lately, by their exact text (bounded like the cache's L1).
VERIFIED_TOKENS = 10_000


class JoseTokenIssuer:
    """`TokenIssuer`: access tokens are HS256 JWTs; refresh tokens are random strings whose
    SHA-256 is what the database keeps (see docs/adr/0007)."""

    def __init__(
        self,
        secret: str,
        access_ttl_seconds: int,
        clock: Clock,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._secret = secret
        self._ttl = access_ttl_seconds
        self._clock = clock
        self._wall_clock = wall_clock  # what python-jose checks `exp` against
        self._verified: LRUCache[str, tuple[AccessClaims, int]] = LRUCache(VERIFIED_TOKENS)

    def issue_access(self, user_id: str) -> IssuedAccessToken:
        now = self._clock.now().astimezone(UTC).replace(microsecond=0)
        jti = uuid.uuid4().hex
        claims = {
            "sub": user_id,
            "iat": int(now.timestamp()),
            "exp": int((now + timedelta(seconds=self._ttl)).timestamp()),
            "jti": jti,
            "type": ACCESS,
        }
        token = jwt.encode(claims, self._secret, algorithm=ALGORITHM)
        return IssuedAccessToken(token=token, expires_in=self._ttl, jti=jti)

    def decode_access(self, token: str) -> AccessClaims:
        """The claims of a valid access token, else TokenInvalid.

        A token that verified is remembered by its exact text (the signature covered every
        byte of it), so a client's next requests skip the HMAC and the JSON parsing; the only
        check whose answer changes with time, expiry, is made again on every use, as
        python-jose makes it (`exp` < now in whole seconds, no leeway). docs/adr/0019."""
        verified = self._verified.get(token)
        if verified is not None:
            claims, expires = verified
            if expires < int(self._wall_clock()):
                raise TokenInvalid()
            return claims
        claims = self._verify(token)
        self._verified[token] = (claims, int(claims.exp.timestamp()))
        return claims

    def _verify(self, token: str) -> AccessClaims:
        try:
            # `algorithms` pinned: `alg: none`, HS512 or RS256-with-our-secret all fail here.
            claims: dict[str, Any] = jwt.decode(
                token, self._secret, algorithms=[ALGORITHM], options=DECODE_OPTIONS
            )
        except (JWTError, ValueError, TypeError, KeyError) as error:
            raise TokenInvalid() from error
        if any(claims.get(name) in (None, "") for name in REQUIRED_CLAIMS):
            raise TokenInvalid()
        if claims["type"] != ACCESS:
            raise TokenInvalid("This is not an access token.")
        try:
            sub = str(uuid.UUID(str(claims["sub"])))
            issued = datetime.fromtimestamp(int(claims["iat"]), UTC)
            expires = datetime.fromtimestamp(int(claims["exp"]), UTC)
        except (ValueError, TypeError, OverflowError) as error:
            raise TokenInvalid() from error
        return AccessClaims(sub=sub, jti=str(claims["jti"]), iat=issued, exp=expires, type=ACCESS)

    def new_refresh_token(self) -> str:
        return secrets.token_urlsafe(REFRESH_TOKEN_BYTES)

    def hash_refresh_token(self, token: str) -> str:
        # 256 random bits need no salt or stretching: a fast hash is enough (ADR 0007).
        return hashlib.sha256(token.encode("utf-8")).hexdigest()
