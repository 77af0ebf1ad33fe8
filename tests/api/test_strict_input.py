"""Integers and booleans in request bodies are what the document says they are: JSON
numbers without a fraction and JSON true/false. `true` is no quantity, `"5"` is no stock and
`0` is no `is_active` (lax parsing took all three); each is a 422 naming the field."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.api.test_foundation import assert_problem
from tests.helpers.auth import auth_headers

ANY_ID = str(uuid.uuid4())


def product(**overrides: Any) -> dict[str, Any]:
    return {"sku": f"S-{uuid.uuid4().hex[:8]}", "name": "Kit", "price": "9.99", "stock": 3,
            **overrides}  # fmt: skip


@pytest.mark.parametrize(
    ("method", "path", "body", "loc"),
    [
        ("POST", "/api/v1/products", product(stock=True), ["body", "stock"]),
        ("POST", "/api/v1/products", product(stock="5"), ["body", "stock"]),
        ("PATCH", f"/api/v1/products/{ANY_ID}", {"is_active": 0}, ["body", "is_active"]),
        ("PATCH", f"/api/v1/products/{ANY_ID}", {"is_active": "true"}, ["body", "is_active"]),
        ("POST", f"/api/v1/products/{ANY_ID}/stock", {"delta": "3", "reason": "count"},
         ["body", "delta"]),
        ("POST", f"/api/v1/products/{ANY_ID}/stock", {"delta": False, "reason": "count"},
         ["body", "delta"]),
        ("PATCH", f"/api/v1/users/{ANY_ID}", {"is_active": 1}, ["body", "is_active"]),
        ("POST", "/api/v1/orders", {"items": [{"product_id": ANY_ID, "quantity": True}]},
         ["body", "items", 0, "quantity"]),
        ("POST", "/api/v1/orders", {"items": [{"product_id": ANY_ID, "quantity": "2"}]},
         ["body", "items", 0, "quantity"]),
    ],
)  # fmt: skip
async def test_booleans_and_numeric_strings_are_refused_where_the_document_says_otherwise(
    client: httpx.AsyncClient, method: str, path: str, body: dict[str, Any], loc: list[Any]
) -> None:
    headers = {**await auth_headers(client, role="admin"), "If-Match": '"1"'}
    response = await client.request(method, path, json=body, headers=headers)
    problem = assert_problem(response, 422, "validation-error")
    assert [e["loc"] for e in problem["errors"]] == [loc]
    assert problem["errors"][0]["type"] in {"int_type", "bool_type"}


async def test_a_whole_number_written_with_a_fraction_is_still_an_integer(
    client: httpx.AsyncClient,
) -> None:
    """JSON Schema's `integer` includes 5.0; the API agrees with its document."""
    headers = await auth_headers(client, role="admin")
    response = await client.post("/api/v1/products", json=product(stock=5.0), headers=headers)
    assert response.status_code == 201, response.text
    assert response.json()["stock"] == 5
