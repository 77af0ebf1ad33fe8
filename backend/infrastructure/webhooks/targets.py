"""The SSRF guard: a webhook may only reach public addresses.

The URL is parsed as httpx parses it (so the guard vets the host the sender will use), its
host resolved, and every address it resolves to must be public: one private answer among
public ones refuses the target (a client could pick it). The sender then connects to the
vetted address itself (`PinnedAddressTransport`), so a second DNS answer cannot swap in
another address between the check and the connection (DNS rebinding).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import httpx

from backend.domain.webhooks import UnsafeTarget

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
SCHEMES = {"http": 80, "https": 443}
# A label inet_aton would read as a number: decimal, octal (leading 0) or hex (0x...).
NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$", re.IGNORECASE)
HOST_CHARS = re.compile(r"^[a-z0-9_.-]+$")
RESOLVE_TIMEOUT_SECONDS = 3.0
CGNAT = ipaddress.ip_network("100.64.0.0/10")
NAT64 = ipaddress.ip_network("64:ff9b::/96")


def refusal(address: IPAddress) -> str | None:
    """Why a webhook may not connect to `address`, or None when it is public."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return "an IPv4-mapped IPv6 address"
        embedded = _embedded_ipv4(address)
        if embedded is not None and refusal(embedded) is not None:
            return f"an IPv6 address embedding {refusal(embedded)}"
    checks = (
        (address.is_unspecified, "an unspecified address"),
        (address.is_loopback, "a loopback address"),
        (address.is_link_local, "a link-local address (cloud metadata lives there)"),
        (address in CGNAT, "a carrier-grade NAT address (100.64.0.0/10)"),
        (address.is_multicast, "a multicast address"),
        (_is_unique_local(address), "a unique local address (fc00::/7)"),
        (address.is_reserved, "a reserved address"),
        (address.is_private, "a private address"),
        (not address.is_global, "not a globally routable address"),
    )
    return next((reason for refused, reason in checks if refused), None)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _is_unique_local(address: IPAddress) -> bool:
    return isinstance(address, ipaddress.IPv6Address) and address in ipaddress.ip_network(
        "fc00::/7"
    )


def ip_literal(host: str) -> IPAddress | None:
    """The address a host names literally, or None for a name. Numeric spellings other than
    dotted-decimal IPv4 and IPv6 (`2130706433`, `0177.0.0.1`, `0x7f.1`, `127.1`) are refused:
    resolvers read them as addresses, and no host name ends in a numeric label."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    last_label = host.rstrip(".").rsplit(".", 1)[-1]
    if NUMERIC_LABEL.match(last_label) or host.endswith("."):
        raise UnsafeTarget(
            f"The host {host!r} is a numeric or otherwise ambiguous spelling of an address: "
            "use a host name or a dotted-decimal / IPv6 address."
        )
    return None


@dataclass(frozen=True, slots=True)
class Target:
    scheme: str
    host: str
    port: int


def parse_target(url: str) -> Target:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as error:
        # httpx refuses some numeric spellings itself ("Invalid IPv4 address: '0177.0.0.1'").
        raise UnsafeTarget(f"Not a usable URL: {error}.") from error
    if parsed.scheme not in SCHEMES:
        raise UnsafeTarget("A webhook URL must be http:// or https://.")
    host = ascii_host(parsed)
    if not host:
        raise UnsafeTarget("A webhook URL needs a host.")
    if not (HOST_CHARS.match(host) or host.startswith("[") or ":" in host):
        raise UnsafeTarget(f"The host {host!r} is not a valid host name.")
    if parsed.userinfo:
        raise UnsafeTarget("A webhook URL must not carry credentials (user:password@).")
    return Target(parsed.scheme, host, parsed.port or SCHEMES[parsed.scheme])


def ascii_host(url: httpx.URL) -> str:
    """The host as it goes on the wire: IDNA-encoded, lower-case, without IPv6 brackets."""
    return url.raw_host.decode("ascii").lower().strip("[]")


class Resolver(Protocol):
    async def resolve(self, host: str, port: int) -> list[str]: ...


class SystemResolver:
    async def resolve(self, host: str, port: int) -> list[str]:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
        return list(dict.fromkeys(str(info[4][0]) for info in infos))


class AddressGuard:
    """Vets webhook targets; `allow_private` (WEBHOOK_ALLOW_PRIVATE_TARGETS) lifts the
    address check (local receivers in tests), never the URL-shape checks."""

    def __init__(
        self,
        resolver: Resolver | None = None,
        *,
        allow_private: bool = False,
        resolve_timeout: float = RESOLVE_TIMEOUT_SECONDS,
    ) -> None:
        self._resolver = resolver or SystemResolver()
        self._allow_private = allow_private
        self._resolve_timeout = resolve_timeout

    async def vet(self, url: str) -> None:
        target = parse_target(url)
        await self.addresses(target.host, target.port)

    async def addresses(self, host: str, port: int) -> list[str]:
        """The vetted addresses of `host`, in the resolver's order."""
        literal = ip_literal(host)
        if literal is not None:
            candidates: Sequence[str] = [str(literal)]
        else:
            candidates = await self._resolve(host, port)
        for candidate in candidates:
            address = ipaddress.ip_address(candidate.split("%", 1)[0])
            reason = None if self._allow_private else refusal(address)
            if reason is not None:
                raise UnsafeTarget(
                    f"The webhook host {host!r} resolves to {address}, {reason}: "
                    "webhooks may only reach public addresses."
                )
        return list(candidates)

    async def _resolve(self, host: str, port: int) -> list[str]:
        try:
            async with asyncio.timeout(self._resolve_timeout):
                found = await self._resolver.resolve(host, port)
        except (OSError, UnicodeError, TimeoutError) as error:
            raise UnsafeTarget(f"The webhook host {host!r} does not resolve.") from error
        if not found:
            raise UnsafeTarget(f"The webhook host {host!r} does not resolve.")
        return found
