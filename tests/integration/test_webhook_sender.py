"""The httpx sender against real HTTP servers on 127.0.0.1: statuses, redirects never
followed, Retry-After, a hung receiver bounded by the timeout, and connections made only to
the address the guard vetted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from backend.domain.webhooks import RESPONSE_EXCERPT_BYTES, generate_secret
from backend.infrastructure.webhooks.sender import HttpxWebhookSender
from backend.infrastructure.webhooks.signing import StandardWebhooksSigner
from backend.infrastructure.webhooks.targets import AddressGuard
from tests.helpers.webhook_receiver import Receiver, Reply, blackhole

BODY = '{"data":{},"id":"evt-1","timestamp":"2026-12-03T08:00:00+00:00","type":"order.created"}'


class FakeResolver:
    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.lookups: list[str] = []

    async def resolve(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        return self.answers[host]


@pytest.fixture
async def sender() -> AsyncIterator[HttpxWebhookSender]:
    s = HttpxWebhookSender(AddressGuard(allow_private=True), total_timeout=1.0)
    yield s
    await s.aclose()


async def test_a_2xx_is_a_success_the_receiver_verifies(sender: HttpxWebhookSender) -> None:
    secret = generate_secret()
    headers = StandardWebhooksSigner().headers("evt-1", BODY, [secret], datetime.now(UTC))
    with Receiver(Reply(204, b"")) as receiver:
        result = await sender.send(receiver.url, BODY, headers)
    assert (result.response_status, result.error, result.succeeded) == (204, None, True)
    assert result.latency_ms > 0
    assert receiver.verified(secret)[0]["id"] == "evt-1"
    assert receiver.received[0].headers["content-type"] == "application/json"


async def test_an_error_status_is_a_failure_with_the_first_kb_of_the_body(
    sender: HttpxWebhookSender,
) -> None:
    with Receiver(Reply(500, b"x" * 5000)) as receiver:
        result = await sender.send(receiver.url, BODY, {})
    assert (result.response_status, result.error, result.succeeded) == (500, "HTTP 500", False)
    assert result.response_excerpt == "x" * RESPONSE_EXCERPT_BYTES


async def test_a_redirect_is_never_followed(sender: HttpxWebhookSender) -> None:
    with Receiver() as elsewhere, Receiver(Reply(302, b"", {"location": elsewhere.url})) as r:
        result = await sender.send(r.url, BODY, {})
    assert result.response_status == 302
    assert result.error == "HTTP 302: redirects are not followed"
    assert elsewhere.received == []


@pytest.mark.parametrize(("status", "header", "seconds"), [(429, "30", 30.0), (503, "7", 7.0)])
async def test_retry_after_is_read_from_429_and_503(
    sender: HttpxWebhookSender, status: int, header: str, seconds: float
) -> None:
    with Receiver(Reply(status, b"", {"retry-after": header})) as receiver:
        result = await sender.send(receiver.url, BODY, {})
    assert (result.response_status, result.retry_after) == (status, seconds)


async def test_retry_after_as_an_http_date_is_read() -> None:
    from datetime import timedelta
    from email.utils import format_datetime

    when = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    s = HttpxWebhookSender(AddressGuard(allow_private=True))
    try:
        with Receiver(Reply(503, b"", {"retry-after": when})) as receiver:
            result = await s.send(receiver.url, BODY, {})
    finally:
        await s.aclose()
    assert result.retry_after is not None
    assert 100 < result.retry_after <= 120


async def test_a_hung_receiver_is_a_timeout_and_a_refused_port_an_error(
    sender: HttpxWebhookSender,
) -> None:
    with blackhole() as url:
        hung = await sender.send(url, BODY, {})
    assert hung.response_status is None
    assert hung.error is not None and "timed out" in hung.error
    with blackhole() as url:
        pass  # closed: nothing listens there any more
    refused = await sender.send(url, BODY, {})
    assert refused.response_status is None
    assert refused.error is not None and "ConnectError" in refused.error


async def test_a_hung_receiver_does_not_hold_up_a_concurrent_send(
    sender: HttpxWebhookSender,
) -> None:
    with blackhole() as hung_url, Receiver() as receiver:
        hung = asyncio.ensure_future(sender.send(hung_url, BODY, {}))
        quick = await sender.send(receiver.url, BODY, {})
        assert quick.succeeded
        assert not hung.done()  # the quick one finished while the hung one still waits
        assert (await hung).error is not None


async def test_a_private_target_is_refused_at_send_time_without_connecting() -> None:
    s = HttpxWebhookSender(AddressGuard())
    try:
        with Receiver() as receiver:
            result = await s.send(receiver.url, BODY, {})
    finally:
        await s.aclose()
    assert result.response_status is None
    assert result.error is not None and "target refused" in result.error
    assert "loopback" in result.error
    assert receiver.received == []


async def test_the_connection_goes_to_the_vetted_address_with_the_name_as_host() -> None:
    resolver = FakeResolver({"hooks.example.com": ["127.0.0.1"]})
    s = HttpxWebhookSender(AddressGuard(resolver, allow_private=True))
    try:
        with Receiver() as receiver:
            url = f"http://hooks.example.com:{receiver.port}/hook"
            result = await s.send(url, BODY, {})
    finally:
        await s.aclose()
    assert result.succeeded
    assert receiver.received[0].headers["Host"] == f"hooks.example.com:{receiver.port}"
    assert resolver.lookups == ["hooks.example.com"]  # once: the address checked is used


async def test_a_name_that_rebinds_to_a_private_address_is_refused_at_send_time() -> None:
    resolver = FakeResolver({"rebind.example.com": ["93.184.216.34"]})
    guard = AddressGuard(resolver)
    await guard.vet("http://rebind.example.com/hook")  # public at registration
    resolver.answers["rebind.example.com"] = ["127.0.0.1"]  # then the DNS answer changes
    s = HttpxWebhookSender(guard)
    try:
        result = await s.send("http://rebind.example.com/hook", BODY, {})
    finally:
        await s.aclose()
    assert result.error is not None and "resolves to 127.0.0.1" in result.error


def _certificate_for(name: str, directory: Any) -> tuple[str, str, str]:
    """(CA file, cert file, key file): a throwaway CA and a certificate for `name`."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(2)
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = [directory / "ca.pem", directory / "cert.pem", directory / "key.pem"]
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(paths[0]), str(paths[1]), str(paths[2])


async def test_tls_to_the_vetted_address_checks_the_certificate_against_the_name(
    tmp_path: Any,
) -> None:
    import ssl

    import httpx

    from backend.infrastructure.webhooks.transport import PinnedAddressTransport

    ca_file, cert_file, key_file = _certificate_for("hooks.example.com", tmp_path)
    server_names: list[str | None] = []
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert_file, key_file)
    server_context.sni_callback = lambda _sock, name, _ctx: server_names.append(name)
    client_context = ssl.create_default_context(cafile=ca_file)
    resolver = FakeResolver({"hooks.example.com": ["127.0.0.1"]})
    guard = AddressGuard(resolver, allow_private=True)
    transport = PinnedAddressTransport(guard, httpx.AsyncHTTPTransport(verify=client_context))
    s = HttpxWebhookSender(guard, transport=transport, total_timeout=5.0)
    try:
        with Receiver() as receiver:
            receiver.server.socket = server_context.wrap_socket(
                receiver.server.socket, server_side=True
            )
            url = f"https://hooks.example.com:{receiver.port}/hook"
            result = await s.send(url, BODY, {})
    finally:
        await s.aclose()
    assert result.succeeded, result.error
    assert server_names == ["hooks.example.com"]  # SNI names the host, not the address
    assert receiver.received[0].headers["Host"] == f"hooks.example.com:{receiver.port}"
