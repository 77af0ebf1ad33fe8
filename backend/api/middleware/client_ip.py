"""The client's address: the TCP peer, or `X-Forwarded-For` when the peer is a trusted proxy.

`X-Forwarded-For` is a list that every proxy appends to, so only its right end can be
believed: walk it from the right while the hops are our own (trusted) proxies; the first
hop that is not one of ours is the client. Anything to its left was written by the client
and may be forged. A peer that is not trusted is the client, whatever the header says.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from starlette.types import Scope

IPAddress = IPv4Address | IPv6Address
UNKNOWN = "unknown"
IPV6_CLIENT_PREFIX = 64  # one IPv6 subscriber usually holds a whole /64


def parse_address(text: str) -> IPAddress | None:
    """An address from a peer or a forwarded hop (`1.2.3.4`, `1.2.3.4:80`, `[::1]:80`)."""
    candidate = text.strip()
    if candidate.startswith("["):
        candidate = candidate[1:].partition("]")[0]
    elif candidate.count(":") == 1:  # IPv4 with a port
        candidate = candidate.partition(":")[0]
    try:
        address = ipaddress.ip_address(candidate)
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def forwarded_hops(scope: Scope) -> list[str]:
    """Every X-Forwarded-For hop, leftmost first (several header lines are one list)."""
    hops: list[str] = []
    for name, value in scope.get("headers", ()):
        if name == b"x-forwarded-for":
            hops.extend(hop for hop in value.decode("latin-1").split(",") if hop.strip())
    return hops


class ClientAddressResolver:
    def __init__(self, trusted_proxies: Iterable[str]) -> None:
        self.networks: tuple[IPv4Network | IPv6Network, ...] = tuple(
            ipaddress.ip_network(entry, strict=False) for entry in trusted_proxies
        )

    def is_trusted(self, address: IPAddress) -> bool:
        return any(address in network for network in self.networks)

    def resolve(self, scope: Scope) -> str:
        client = scope.get("client")
        peer = parse_address(str(client[0])) if client else None
        if peer is None:
            return str(client[0]) if client else UNKNOWN
        if not self.networks or not self.is_trusted(peer):
            return str(peer)
        nearest = peer
        for hop in reversed(forwarded_hops(scope)):
            address = parse_address(hop)
            if address is None:
                break  # garbage where our proxy should have written: keep the last sure hop
            if not self.is_trusted(address):
                return str(address)
            nearest = address
        return str(nearest)


def limit_key(address: str) -> str:
    """The rate-limit bucket of an address: IPv4 as is, IPv6 by its /64."""
    parsed = parse_address(address)
    if isinstance(parsed, IPv6Address):
        network = ipaddress.ip_network(f"{parsed}/{IPV6_CLIENT_PREFIX}", strict=False)
        return f"ip:{network}"
    return f"ip:{address}"
