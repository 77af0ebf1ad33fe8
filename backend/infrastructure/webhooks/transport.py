"""An httpx transport that connects only to an address the SSRF guard has just vetted.

The request's host is resolved and vetted here, at send time, and the connection is made
to that very address: the URL keeps its host for the `Host` header (set by httpx when the
request was built) and TLS (`sni_hostname`: the certificate is checked against the name),
while the socket goes to the vetted IP. A DNS answer that changes between registration and
delivery, or between two lookups of one delivery, can therefore not reach a private address.
"""

from __future__ import annotations

import ipaddress

import httpx

from backend.infrastructure.webhooks.targets import SCHEMES, AddressGuard, ascii_host


class PinnedAddressTransport(httpx.AsyncBaseTransport):
    def __init__(self, guard: AddressGuard, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self._guard = guard
        # trust_env=False: an HTTP(S)_PROXY from the environment would connect elsewhere.
        self._inner = inner or httpx.AsyncHTTPTransport(trust_env=False)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = ascii_host(request.url)
        port = request.url.port or SCHEMES.get(request.url.scheme, 80)
        address = (await self._guard.addresses(host, port))[0]
        if request.url.scheme == "https" and not _is_ip(host):
            request.extensions = {**request.extensions, "sni_hostname": host}
        request.url = request.url.copy_with(host=address)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True
