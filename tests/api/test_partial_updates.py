"""Every PATCH body follows one rule (api/v1/schemas/common.py `PartialUpdate`): at least one
field, and a field that cannot be null is refused as null; the document says both
(`minProperties: 1`, no null branch), so a client generated from it never sends either."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.test_foundation import assert_problem
from tests.helpers.orders import api_product, api_user, body_of


@pytest.fixture
async def targets(client: httpx.AsyncClient) -> dict[str, tuple[str, dict[str, str]]]:
    """PATCH path -> the headers of someone allowed to PATCH it."""
    customer, customer_headers = await api_user(client)
    _, admin = await api_user(client, "admin")
    product = await api_product(client, stock=5)
    order = await client.post("/api/v1/orders", json=body_of((product.id, 1)), headers=admin)
    return {
        "product": (f"/api/v1/products/{product.id}", admin),
        "order": (f"/api/v1/orders/{order.json()['id']}", admin),
        "me": ("/api/v1/users/me", customer_headers),
        "user": (f"/api/v1/users/{customer['id']}", admin),
    }


@pytest.mark.parametrize("target", ["product", "order", "me", "user"])
async def test_an_empty_patch_is_422(
    client: httpx.AsyncClient, targets: dict[str, Any], target: str
) -> None:
    path, headers = targets[target]
    body = assert_problem(
        await client.patch(path, json={}, headers=headers), 422, "validation-error"
    )
    assert [(e["loc"], e["type"]) for e in body["errors"]] == [(["body"], "empty_update")]


@pytest.mark.parametrize("field", ["name", "price", "is_active"])
async def test_a_product_field_that_cannot_be_null_is_422_as_null(
    client: httpx.AsyncClient, targets: dict[str, Any], field: str
) -> None:
    path, headers = targets["product"]
    response = await client.patch(path, json={field: None}, headers=headers)
    body = assert_problem(response, 422, "validation-error")
    assert [e["type"] for e in body["errors"]] == ["not_nullable"]
    assert field in body["errors"][0]["msg"]


async def test_the_document_states_both_rules(client: httpx.AsyncClient) -> None:
    schemas = (await client.get("/openapi.json")).json()["components"]["schemas"]
    for name in ("ProductUpdateIn", "OrderUpdateIn", "ProfileUpdateIn", "AdminUserUpdateIn"):
        assert schemas[name]["minProperties"] == 1, name
    product = schemas["ProductUpdateIn"]["properties"]
    assert product["is_active"]["type"] == "boolean" and "anyOf" not in product["is_active"]
    assert {b.get("type") for b in product["price"]["anyOf"]} == {"string", "number"}
    assert {b.get("type") for b in product["description"]["anyOf"]} == {"string", "null"}
