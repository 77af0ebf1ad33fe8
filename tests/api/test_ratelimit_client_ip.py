"""Client address resolution: X-Forwarded-For is believed only from trusted proxies."""

from __future__ import annotations

import pytest

from backend.api.middleware.client_ip import (
    ClientAddressResolver,
    forwarded_hops,
    limit_key,
    parse_address,
)


def scope(peer: str | None, *forwarded: str) -> dict:
    headers = [(b"x-forwarded-for", value.encode()) for value in forwarded]
    return {"type": "http", "client": (peer, 1234) if peer else None, "headers": headers}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("198.51.100.7", "198.51.100.7"),
        (" 198.51.100.7 ", "198.51.100.7"),
        ("198.51.100.7:8080", "198.51.100.7"),
        ("2001:db8::1", "2001:db8::1"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("::ffff:10.1.2.3", "10.1.2.3"),
        ("unknown", None),
        ("", None),
        ("300.1.1.1", None),
        ("_hidden", None),
    ],
)
def test_parse_address(text: str, expected: str | None) -> None:
    parsed = parse_address(text)
    assert (str(parsed) if parsed else None) == expected


def test_several_forwarded_header_lines_are_one_list() -> None:
    assert forwarded_hops(scope("10.0.0.1", "1.1.1.1, 2.2.2.2", "3.3.3.3")) == [
        "1.1.1.1",
        " 2.2.2.2",
        "3.3.3.3",
    ]


def test_without_trusted_proxies_the_peer_is_the_client() -> None:
    resolver = ClientAddressResolver([])
    assert resolver.resolve(scope("203.0.113.9", "198.51.100.1")) == "203.0.113.9"


def test_an_untrusted_peer_is_the_client_whatever_it_forwards() -> None:
    resolver = ClientAddressResolver(["10.0.0.0/8", "192.168.1.10"])
    assert resolver.resolve(scope("203.0.113.9", "198.51.100.1")) == "203.0.113.9"
    assert resolver.resolve(scope("192.168.1.11", "198.51.100.1")) == "192.168.1.11"


def test_a_trusted_peer_names_the_rightmost_untrusted_hop() -> None:
    resolver = ClientAddressResolver(["10.0.0.0/8", "192.168.1.10"])
    assert resolver.resolve(scope("192.168.1.10", "198.51.100.1")) == "198.51.100.1"
    assert resolver.resolve(scope("10.0.0.2", "6.6.6.6, 198.51.100.1, 10.0.0.3")) == (
        "198.51.100.1"
    )
    assert resolver.resolve(scope("10.0.0.2", "6.6.6.6", "198.51.100.1:5555")) == "198.51.100.1"


def test_a_trusted_peer_without_header_or_only_trusted_hops() -> None:
    resolver = ClientAddressResolver(["10.0.0.0/8"])
    assert resolver.resolve(scope("10.0.0.2")) == "10.0.0.2"
    assert resolver.resolve(scope("10.0.0.2", "10.0.0.7, 10.0.0.8")) == "10.0.0.7"


def test_garbage_where_the_proxy_wrote_keeps_the_last_sure_hop() -> None:
    resolver = ClientAddressResolver(["10.0.0.0/8"])
    assert resolver.resolve(scope("10.0.0.2", "198.51.100.1, not-an-ip")) == "10.0.0.2"
    assert resolver.resolve(scope("10.0.0.2", "not-an-ip, 10.0.0.5")) == "10.0.0.5"


def test_ipv6_proxies_and_mapped_peers() -> None:
    resolver = ClientAddressResolver(["fd00::/8"])
    assert resolver.resolve(scope("fd00::1", "2001:db8::42")) == "2001:db8::42"
    mapped = ClientAddressResolver(["10.0.0.0/8"])
    assert mapped.resolve(scope("::ffff:10.0.0.2", "198.51.100.1")) == "198.51.100.1"


def test_a_peer_that_is_not_an_address() -> None:
    resolver = ClientAddressResolver(["10.0.0.0/8"])
    assert resolver.resolve(scope(None, "198.51.100.1")) == "unknown"
    assert resolver.resolve(scope("testclient", "198.51.100.1")) == "testclient"


def test_ipv6_clients_share_a_bucket_per_64() -> None:
    assert limit_key("198.51.100.1") == "ip:198.51.100.1"
    assert limit_key("2001:db8:1:2:aaaa::1") == limit_key("2001:db8:1:2:bbbb::9")
    assert limit_key("2001:db8:1:2::1") == "ip:2001:db8:1:2::/64"
    assert limit_key("2001:db8:1:3::1") != limit_key("2001:db8:1:2::1")
