"""The HTTP series on /metrics: labelled with the route template the router matched."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from tests.api.test_foundation import probed  # noqa: F401  (fixture: the app plus _test routes)
from tests.api.test_products import create
from tests.helpers.auth import auth_headers

PRODUCT = "/api/v1/products/{product_id}"


async def samples(client: httpx.AsyncClient, name: str) -> Iterator[Sample]:
    text = (await client.get("/metrics")).text
    return (
        sample
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    )


async def requests_total(client: httpx.AsyncClient) -> dict[tuple[str, str, str], float]:
    return {
        (s.labels["handler"], s.labels["method"], s.labels["status"]): s.value
        for s in await samples(client, "http_requests_total")
    }


async def test_requests_are_counted_by_route_template_method_and_status_class(
    client: httpx.AsyncClient,
) -> None:
    admin = await auth_headers(client, role="admin")
    product = await create(client, admin)
    for _ in range(3):
        assert (await client.get(f"/api/v1/products/{product['id']}")).status_code == 200
    assert (await client.get(f"/api/v1/products/{uuid.uuid4()}")).status_code == 404
    assert (await client.get("/api/v1/products/not-a-uuid")).status_code == 422
    assert (await client.delete("/api/v1/health")).status_code == 405
    assert (await client.get("/api/v1/no-such-route")).status_code == 404
    assert (await client.get(f"/api/v1/no-such-route/{uuid.uuid4()}")).status_code == 404
    await client.get("/metrics")

    counted = await requests_total(client)

    assert counted[(PRODUCT, "GET", "2xx")] == 3
    assert counted[(PRODUCT, "GET", "4xx")] == 2  # the unknown id and the malformed one
    assert counted[("/api/v1/products", "POST", "2xx")] == 1
    assert counted[("/api/v1/health", "DELETE", "4xx")] == 1
    # Paths no route matches share one label: a scanner cannot grow the label set.
    assert counted[("none", "GET", "4xx")] == 2
    assert not any(handler.startswith("/api/v1/no-such") for handler, _, _ in counted)
    assert not any(handler == "/metrics" for handler, _, _ in counted)  # scrapes are not counted


async def test_latency_is_observed_per_route_and_overall(client: httpx.AsyncClient) -> None:
    await client.get("/api/v1/health")
    await client.get("/api/v1/health")

    by_route = {
        s.labels["handler"]: s.value
        for s in await samples(client, "http_request_duration_seconds_count")
        if s.labels["method"] == "GET"
    }
    assert by_route["/api/v1/health"] == 2
    overall = list(await samples(client, "http_request_duration_highr_seconds_count"))
    assert len(overall) == 1 and overall[0].labels == {}
    assert overall[0].value >= 2
    buckets = {
        s.labels["le"]
        for s in await samples(client, "http_request_duration_seconds_bucket")
        if s.labels["handler"] == "/api/v1/health"
    }
    assert buckets == {"0.1", "0.5", "1.0", "+Inf"}


async def test_a_crash_counts_as_a_5xx_of_its_route(probed: httpx.AsyncClient) -> None:  # noqa: F811
    response = await probed.get("/_test/crash")
    assert response.status_code == 500

    assert (await requests_total(probed))[("/_test/crash", "GET", "5xx")] == 1
