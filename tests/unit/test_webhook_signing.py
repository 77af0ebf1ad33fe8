"""Signatures any Standard Webhooks receiver verifies; secrets unreadable at rest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from backend.domain.webhooks import SECRET_PREFIX, generate_secret
from backend.infrastructure.webhooks.cipher import FernetSecretCipher, SecretUnreadable
from backend.infrastructure.webhooks.signing import StandardWebhooksSigner

BODY = '{"data":{"order_id":"o1"},"id":"evt-1","type":"order.created"}'


def test_a_secret_is_whsec_and_32_random_bytes() -> None:
    import base64

    first, second = generate_secret(), generate_secret()
    assert first.startswith(SECRET_PREFIX)
    assert len(base64.b64decode(first.removeprefix(SECRET_PREFIX))) == 32
    assert first != second


def test_the_receiver_verifies_the_body_with_the_secret() -> None:
    secret = generate_secret()
    headers = StandardWebhooksSigner().headers("evt-1", BODY, [secret], datetime.now(UTC))
    assert headers["webhook-id"] == "evt-1"
    assert Webhook(secret).verify(BODY, headers) == {
        "data": {"order_id": "o1"},
        "id": "evt-1",
        "type": "order.created",
    }
    with pytest.raises(WebhookVerificationError):
        Webhook(generate_secret()).verify(BODY, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY.replace("o1", "o2"), headers)


def test_with_two_secrets_either_one_verifies() -> None:
    old, new = generate_secret(), generate_secret()
    headers = StandardWebhooksSigner().headers("evt-1", BODY, [new, old], datetime.now(UTC))
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(BODY, headers)
    Webhook(new).verify(BODY, headers)


def test_a_non_utc_time_is_signed_as_the_same_instant() -> None:
    """`Webhook.sign()` would read 12:00+02:00 as 12:00 UTC; the signer converts first."""
    secret = generate_secret()
    instant = datetime.now(UTC)
    berlin = instant.astimezone(timezone(timedelta(hours=2)))
    signer = StandardWebhooksSigner()
    in_utc = signer.headers("evt-1", BODY, [secret], instant)
    elsewhere = signer.headers("evt-1", BODY, [secret], berlin)
    assert elsewhere == in_utc
    assert int(in_utc["webhook-timestamp"]) == int(instant.timestamp())
    Webhook(secret).verify(BODY, elsewhere)  # inside the receiver's 5-minute tolerance


def test_secrets_are_encrypted_and_only_the_same_key_reads_them() -> None:
    secret = generate_secret()
    cipher = FernetSecretCipher("a-key-that-is-long-enough-for-hkdf-0123456789")
    token = cipher.encrypt(secret)
    assert secret not in token
    assert cipher.encrypt(secret) != token  # a fresh IV each time
    assert cipher.decrypt(token) == secret
    with pytest.raises(SecretUnreadable):
        FernetSecretCipher("another-key-entirely-0123456789-abcdef").decrypt(token)
