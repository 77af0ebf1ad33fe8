"""Bodies over MAX_BODY_BYTES are refused with a 413 problem document.

A declared Content-Length is checked before the app runs; a body that omits or
misstates its length is counted as it streams, and the overflow is raised as an
HTTPException(413), which FastAPI hands to our error handler.
(FastAPI's own `max_body_size` sits outside user middleware and answers in plain text.)
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.api.problems import problem_response


class BodySizeLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    @property
    def detail(self) -> str:
        return f"The request body exceeds {self.max_bytes} bytes."

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                response = problem_response(scope, 413, detail=self.detail)
                await response(scope, receive, send)
                return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(413, detail=self.detail)
            return message

        await self.app(scope, counting_receive, send)
