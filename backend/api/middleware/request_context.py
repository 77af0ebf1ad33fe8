"""The request id: the client's `X-Request-ID` when it is a sane token, else a new one.

The id, the access log line and the crash guard live in the HTTP edge (`edge.py`).
"""

from __future__ import annotations

import re

REQUEST_ID_HEADER = b"x-request-id"
VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def valid_request_id(value: bytes) -> str | None:
    """The client's request id, or None when it is not one we repeat back."""
    candidate = value.decode("latin-1")
    return candidate if VALID_REQUEST_ID.match(candidate) else None
