"""A PostgreSQL that refuses every session at startup with one SQLSTATE, as a real server
does while it shuts down (57P03), has no free slot (53300), ...: it speaks just enough of the
wire protocol (version 3) to decline TLS and answer the StartupMessage with a FATAL
ErrorResponse, then hangs up."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104


def error_response(sqlstate: str, message: str) -> bytes:
    fields = b"".join(
        code + value.encode() + b"\0"
        for code, value in ((b"S", "FATAL"), (b"V", "FATAL"), (b"C", sqlstate), (b"M", message))
    )
    body = fields + b"\0"
    return b"E" + struct.pack("!i", len(body) + 4) + body


class RefusingPostgres:
    def __init__(self, sqlstate: str, message: str) -> None:
        self.reply = error_response(sqlstate, message)
        self.sessions_refused = 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                (length,) = struct.unpack("!i", await reader.readexactly(4))
                payload = await reader.readexactly(length - 4)
                (code,) = struct.unpack("!i", payload[:4])
                if code in (SSL_REQUEST, GSSENC_REQUEST):
                    writer.write(b"N")  # no TLS, no GSS: go on in clear
                    await writer.drain()
                    continue
                writer.write(self.reply)
                await writer.drain()
                self.sessions_refused += 1
                return
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()


@asynccontextmanager
async def refusing_postgres(
    sqlstate: str, message: str
) -> AsyncIterator[tuple[str, RefusingPostgres]]:
    """`async with refusing_postgres("57P03", "...") as (url, server):` an asyncpg URL."""
    fake = RefusingPostgres(sqlstate, message)
    server = await asyncio.start_server(fake._serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"postgresql+asyncpg://orderflow@127.0.0.1:{port}/orderflow", fake
    finally:
        server.close()
        await server.wait_closed()
