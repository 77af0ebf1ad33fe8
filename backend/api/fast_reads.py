"""Reads the HTTP edge answers before FastAPI (docs/adr/0019): `GET {prefix}{canonical id}`
of one versioned resource, with the same ETag, 304, body and problems as the app's route.

A subclass says which requests it takes (`accepts`: from the request's headers) and how it
reads the resource (`read`: its version and how to serialise it); everything else — the
matching, the headers it reads, the conditional answer and the problems — is here, once.
It declines (and the app's route answers) anything else: another method, an id not in the
canonical form, a request it does not accept, a request before the container exists."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from starlette.types import Receive, Scope, Send

from backend.api.errors import domain_error_response
from backend.api.etags import etag, none_match
from backend.domain.errors import DomainError

# A path parameter in the one form a fast route accepts (others go to the app's route).
CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
READ_HEADERS = (b"authorization", b"if-none-match")
JSON = b"application/json"

Headers = dict[bytes, str]  # the first value of each of READ_HEADERS the request sent
Serialise = Callable[[], bytes]


def container_in(scope: Scope) -> Any:
    """The app's container (built in the lifespan), or None before it exists."""
    return getattr(getattr(scope.get("app"), "state", None), "container", None)


class VersionedRead:
    """A `FastRoute` (`backend/api/middleware/edge.py`) for one versioned resource."""

    extra_headers: tuple[tuple[bytes, bytes], ...] = ()  # on the 200 and the 304 alike

    def __init__(self, prefix: str, parameter: str) -> None:
        self.prefix = prefix
        self.template = f"{prefix}{{{parameter}}}"

    def matches(self, scope: Scope) -> bool:
        path: str = scope["path"]
        return (
            scope["method"] == "GET"
            and path.startswith(self.prefix)
            and CANONICAL_UUID.fullmatch(path, len(self.prefix)) is not None
        )

    def accepts(self, headers: Headers) -> bool:
        raise NotImplementedError

    async def read(
        self, container: Any, scope: Scope, resource_id: str, headers: Headers
    ) -> tuple[int, Serialise]:
        """(version, the JSON body's serialiser); a `DomainError` becomes its problem."""
        raise NotImplementedError

    async def answer(self, scope: Scope, receive: Receive, send: Send) -> bool:
        headers: Headers = {}
        for name, value in scope["headers"]:
            if name in READ_HEADERS and name not in headers:
                headers[name] = value.decode("latin-1")
        container = container_in(scope)
        if container is None or not self.accepts(headers):
            return False
        try:
            resource_id = scope["path"][len(self.prefix) :]
            version, body = await self.read(container, scope, resource_id, headers)
            not_modified = none_match(headers.get(b"if-none-match"), version)
        except DomainError as error:
            await domain_error_response(scope, error)(scope, receive, send)
            return True
        response = [(b"etag", etag(version).encode()), *self.extra_headers]
        payload = b""
        if not_modified:
            status_code = 304
        else:
            status_code, payload = 200, body()
            response += [(b"content-length", b"%d" % len(payload)), (b"content-type", JSON)]
        await send({"type": "http.response.start", "status": status_code, "headers": response})
        await send({"type": "http.response.body", "body": payload})
        return True
