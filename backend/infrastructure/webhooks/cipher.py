"""Endpoint secrets encrypted at rest with Fernet (AES-128-CBC + HMAC-SHA256).

The Fernet key is derived from a configured key string with HKDF, so any sufficiently
random string (WEBHOOK_SECRET_KEY, else SECRET_KEY) can serve; see ADR 0016.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_CONTEXT = b"orderflow webhook secrets v1"


class SecretUnreadable(RuntimeError):
    """A stored secret does not decrypt with the configured key (the key was changed)."""


def derive_fernet_key(key_material: str) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=KEY_CONTEXT)
    return base64.urlsafe_b64encode(hkdf.derive(key_material.encode("utf-8")))


class FernetSecretCipher:
    def __init__(self, key_material: str) -> None:
        self._fernet = Fernet(derive_fernet_key(key_material))

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except InvalidToken as error:
            raise SecretUnreadable(
                "a webhook secret does not decrypt: WEBHOOK_SECRET_KEY (or SECRET_KEY) changed"
            ) from error
