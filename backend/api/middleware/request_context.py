"""The request id: the client's `X-Request-ID` when it is a sane token, else a new one.

The id, the access log line and the crash guard live in the HTTP edge (`edge.py`).
"""

from __future__ import annotations

import random
import re

REQUEST_ID_HEADER = b"x-request-id"
VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def valid_request_id(value: bytes) -> str | None:
    """The client's request id, or None when it is not one we repeat back."""
    candidate = value.decode("latin-1")
    return candidate if VALID_REQUEST_ID.match(candidate) else None


def new_request_id() -> str:
    """32 random hex digits, as `uuid4().hex` has, from the interpreter's generator instead of
    the OS's (a system call per request, to label a log line; `random` is reseeded in a forked
    child, so workers do not repeat each other)."""
    return f"{random.getrandbits(128):032x}"
