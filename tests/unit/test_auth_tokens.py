"""The JWT adapter: what it issues, and every kind of token it must refuse."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from backend.domain.users import TokenInvalid
from backend.infrastructure.security.tokens import JoseTokenIssuer
from tests.fakes.clock import SteppingClock
from tests.helpers.auth import forge_token, tamper

SECRET = "unit-test-secret-that-is-long-enough-0123456789"


@pytest.fixture
def issuer() -> JoseTokenIssuer:
    return JoseTokenIssuer(SECRET, 900, fixed_clock(datetime.now(UTC)))


def test_issued_access_tokens_round_trip(issuer: JoseTokenIssuer) -> None:
    user_id = str(uuid.uuid4())
    issued = issuer.issue_access(user_id)
    claims = issuer.decode_access(issued.token)
    assert claims.sub == user_id and claims.type == "access" and claims.jti == issued.jti
    assert claims.exp - claims.iat == timedelta(seconds=900)
    assert issued.expires_in == 900
    assert issuer.issue_access(user_id).jti != issued.jti


def fixed_clock(at: datetime) -> SteppingClock:
    return SteppingClock(at, step=timedelta(0))


BAD_TOKENS = {
    "expired": lambda: (
        JoseTokenIssuer(SECRET, 900, fixed_clock(datetime.now(UTC) - timedelta(hours=1)))
        .issue_access(str(uuid.uuid4()))
        .token
    ),
    "tampered": lambda: tamper(forge_token(SECRET)),
    "alg none": lambda: forge_token(SECRET, algorithm="none"),
    "HS512": lambda: forge_token(SECRET, algorithm="HS512"),
    "other key": lambda: forge_token("another-secret-that-is-long-enough-0123456789"),
    "no exp": lambda: forge_token(SECRET, drop=("exp",)),
    "no iat": lambda: forge_token(SECRET, drop=("iat",)),
    "no sub": lambda: forge_token(SECRET, drop=("sub",)),
    "no jti": lambda: forge_token(SECRET, drop=("jti",)),
    "no type": lambda: forge_token(SECRET, drop=("type",)),
    "type refresh": lambda: forge_token(SECRET, type="refresh"),
    "sub not a uuid": lambda: forge_token(SECRET, sub="admin"),
    "foreign audience": lambda: forge_token(SECRET, aud="someone-else"),
    "not yet valid": lambda: forge_token(SECRET, nbf=9_999_999_999),
    "garbage": lambda: "not.a.jwt",
    "empty": lambda: "",
}


@pytest.mark.parametrize("kind", list(BAD_TOKENS))
def test_bad_tokens_are_refused(issuer: JoseTokenIssuer, kind: str) -> None:
    with pytest.raises(TokenInvalid):
        issuer.decode_access(BAD_TOKENS[kind]())


def test_a_well_formed_forged_token_with_our_key_is_accepted(issuer: JoseTokenIssuer) -> None:
    # The control for the table above: the forger makes valid tokens when nothing is wrong.
    assert issuer.decode_access(forge_token(SECRET)).type == "access"


def test_refresh_tokens_are_256_bit_random_and_stored_as_sha256(
    issuer: JoseTokenIssuer,
) -> None:
    tokens = {issuer.new_refresh_token() for _ in range(100)}
    assert len(tokens) == 100
    token = tokens.pop()
    assert len(token) >= 43  # 32 bytes, base64url
    assert issuer.hash_refresh_token(token) == hashlib.sha256(token.encode()).hexdigest()


def test_a_verified_token_is_remembered_and_still_expires() -> None:
    now = [datetime.now(UTC).timestamp()]
    issuer = JoseTokenIssuer(SECRET, 60, fixed_clock(datetime.now(UTC)), wall_clock=lambda: now[0])
    token = issuer.issue_access(str(uuid.uuid4())).token
    first = issuer.decode_access(token)
    assert issuer.decode_access(token) is first  # not verified again
    now[0] = first.exp.timestamp()  # the last second it is valid in
    assert issuer.decode_access(token) is first
    now[0] = first.exp.timestamp() + 1
    with pytest.raises(TokenInvalid):
        issuer.decode_access(token)
    with pytest.raises(TokenInvalid):  # the signature still counts for a token never seen
        issuer.decode_access(tamper(token))
