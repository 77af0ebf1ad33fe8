"""The SSRF guard refuses every address a webhook must not reach, however it is spelled,
literally or through DNS, and lets public addresses through."""

from __future__ import annotations

import ipaddress

import pytest

from backend.domain.webhooks import UnsafeTarget
from backend.infrastructure.webhooks.targets import AddressGuard, ip_literal, parse_target, refusal


class FakeResolver:
    """DNS as a dict; counts lookups."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.lookups: list[str] = []

    async def resolve(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        if host not in self.answers:
            raise OSError(f"{host}: Name or service not known")
        return self.answers[host]


REFUSED = {
    "127.0.0.1": "loopback",
    "127.255.255.254": "loopback",
    "::1": "loopback",
    "10.0.0.1": "private",
    "172.16.5.4": "private",
    "172.31.255.255": "private",
    "192.168.1.1": "private",
    "169.254.169.254": "link-local",  # cloud metadata
    "169.254.0.1": "link-local",
    "fe80::1": "link-local",
    "100.64.0.1": "carrier-grade NAT",
    "100.127.255.254": "carrier-grade NAT",
    "224.0.0.1": "multicast",
    "239.255.255.250": "multicast",
    "ff02::1": "multicast",
    "fc00::1": "unique local",
    "fd12:3456:789a::1": "unique local",
    "240.0.0.1": "reserved",
    "255.255.255.255": "reserved",
    "0.0.0.0": "unspecified",  # noqa: S104 - an address refused, not bound
    "::": "unspecified",
    "::ffff:127.0.0.1": "IPv4-mapped",
    "::ffff:8.8.8.8": "IPv4-mapped",  # mapped addresses are refused whatever they map
    "2002:7f00:1::": "embedding",  # 6to4 of 127.0.0.1
    "64:ff9b::a00:1": "embedding",  # NAT64 of 10.0.0.1
    "198.18.0.1": "private",  # benchmarking
    "192.0.2.10": "private",  # documentation (TEST-NET-1)
    "2001:db8::1": "private",  # documentation
}
PUBLIC = ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700:4700::1111", "2a00:1450:4001::1"]


@pytest.mark.parametrize(("address", "kind"), REFUSED.items())
def test_every_non_public_address_is_refused_with_its_reason(address: str, kind: str) -> None:
    reason = refusal(ipaddress.ip_address(address))
    assert reason is not None
    assert kind in reason


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize("address", list(REFUSED))
async def test_a_literal_non_public_address_is_refused_without_dns(address: str) -> None:
    resolver = FakeResolver({})
    host = f"[{address}]" if ":" in address else address
    with pytest.raises(UnsafeTarget) as refused:
        await AddressGuard(resolver).vet(f"https://{host}/hook")
    assert address in refused.value.detail or "resolves to" in refused.value.detail
    assert resolver.lookups == []


@pytest.mark.parametrize(
    "url",
    [
        "http://2130706433/",  # decimal 127.0.0.1
        "http://0177.0.0.1/",  # octal
        "http://0x7f.1/",  # hex + short form
        "http://0x7f000001/",
        "http://127.1/",  # short form
        "http://017700000001/",
        "http://127.0.0.1./",  # trailing dot
        "http://8.8.8.010/",  # octal label in an otherwise public-looking address
        "http://example.0x10/",
    ],
)
async def test_numeric_spellings_of_addresses_are_refused(url: str) -> None:
    with pytest.raises(UnsafeTarget) as refused:
        await AddressGuard(FakeResolver({}), allow_private=True).vet(url)
    detail = refused.value.detail
    assert "numeric or otherwise ambiguous" in detail or "Invalid IPv4 address" in detail
    assert url.split("/")[2] in detail


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/", "http:// or https://"),
        ("file:///etc/passwd", "http:// or https://"),
        ("gopher://example.com/", "http:// or https://"),
        ("http://[::1/", "Not a usable URL"),
        ("https://user:pw@example.com/", "credentials"),
        ("https:///nohost", "host"),
        ("http://exa mple.com/", "not a valid host name"),
    ],
)
async def test_urls_that_are_not_plain_http_targets_are_refused(url: str, message: str) -> None:
    with pytest.raises(UnsafeTarget) as refused:
        await AddressGuard(FakeResolver({"example.com": ["93.184.216.34"]})).vet(url)
    assert message in refused.value.detail


@pytest.mark.parametrize("address", ["127.0.0.1", "169.254.169.254", "10.1.2.3", "::1"])
async def test_a_name_resolving_to_a_non_public_address_is_refused(address: str) -> None:
    guard = AddressGuard(FakeResolver({"internal.example.com": [address]}))
    with pytest.raises(UnsafeTarget) as refused:
        await guard.vet("https://internal.example.com/hook")
    assert f"resolves to {address}" in refused.value.detail


async def test_one_private_answer_among_public_ones_refuses_the_name() -> None:
    guard = AddressGuard(FakeResolver({"mixed.example.com": ["93.184.216.34", "10.0.0.7"]}))
    with pytest.raises(UnsafeTarget) as refused:
        await guard.vet("https://mixed.example.com/")
    assert "10.0.0.7" in refused.value.detail


async def test_a_name_that_does_not_resolve_is_refused() -> None:
    with pytest.raises(UnsafeTarget) as refused:
        await AddressGuard(FakeResolver({})).vet("https://nowhere.example.com/")
    assert "does not resolve" in refused.value.detail


async def test_public_names_and_literals_pass_and_their_addresses_come_back() -> None:
    resolver = FakeResolver({"hooks.example.com": ["93.184.216.34", "2606:2800:220:1::1"]})
    guard = AddressGuard(resolver)
    await guard.vet("https://hooks.example.com:8443/path?q=1")
    await guard.vet("http://[2606:4700:4700::1111]/")
    assert await guard.addresses("hooks.example.com", 443) == [
        "93.184.216.34",
        "2606:2800:220:1::1",
    ]


async def test_allowing_private_targets_lifts_the_address_check_only() -> None:
    guard = AddressGuard(FakeResolver({"localhost": ["127.0.0.1"]}), allow_private=True)
    await guard.vet("http://localhost:8080/hook")
    await guard.vet("http://127.0.0.1:9/")
    with pytest.raises(UnsafeTarget):
        await guard.vet("ftp://127.0.0.1/")


def test_the_target_is_parsed_as_httpx_parses_it() -> None:
    assert parse_target("HTTPS://Hooks.Example.COM/x").host == "hooks.example.com"
    assert parse_target("http://example.com/").port == 80
    assert parse_target("https://example.com/").port == 443
    assert ip_literal("hooks.example.com") is None
    assert ip_literal("8.8.8.8") == ipaddress.ip_address("8.8.8.8")
