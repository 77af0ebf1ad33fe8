"""Standard Webhooks signatures, made by the `standardwebhooks` library."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from math import floor

from standardwebhooks.webhooks import Webhook


class StandardWebhooksSigner:
    def headers(
        self, message_id: str, body: str, secrets: Sequence[str], at: datetime
    ) -> dict[str, str]:
        # `Webhook.sign()` replaces the tzinfo of the datetime it is given with UTC instead of
        # converting (an aware 10:00+02:00 would be signed as 10:00 UTC): always hand it UTC.
        at = at.astimezone(UTC)
        signatures = [Webhook(secret).sign(message_id, at, body) for secret in secrets]
        return {
            "webhook-id": message_id,
            "webhook-timestamp": str(floor(at.timestamp())),
            "webhook-signature": " ".join(signatures),
        }
