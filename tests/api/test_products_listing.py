"""GET /products: filters, each sort both ways, paging with totals, and refused queries."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.api.test_foundation import assert_problem
from tests.helpers.auth import auth_headers

PRODUCTS = "/api/v1/products"
SHELF = [  # sku, name, price, stock, description
    ("TEA-1", "Green tea", "4.50", 10, "loose leaf"),
    ("MUG-1", "Mug", "12.00", 0, "for tea"),
    ("POT-1", "Teapot", "30.00", 2, None),
    ("CUP-1", "Cup", "3.00", 4, None),
    ("BOX-1", "Box of 100% cotton_bags", "1.00", 50, None),
]


@pytest.fixture
async def shelf(client: httpx.AsyncClient) -> dict[str, Any]:
    admin = await auth_headers(client, role="admin")
    created = {}
    for sku, name, price, stock, description in SHELF:
        body = {"sku": sku, "name": name, "price": price, "stock": stock}
        if description:
            body["description"] = description
        response = await client.post(PRODUCTS, json=body, headers=admin)
        assert response.status_code == 201, response.text
        created[sku] = response.json()
    retired = await client.post(
        PRODUCTS,
        json={"sku": "OLD-1", "name": "Old tea", "price": "2.00", "stock": 5},
        headers=admin,
    )
    await client.delete(f"{PRODUCTS}/{retired.json()['id']}", headers=admin)
    return {"admin": admin, "products": created}


async def skus(
    client: httpx.AsyncClient, headers: dict[str, str] | None = None, **params: Any
) -> list[str]:
    response = await client.get(PRODUCTS, params=params, headers=headers)
    assert response.status_code == 200, response.text
    return [item["sku"] for item in response.json()["items"]]


async def test_the_page_has_items_and_paging_fields(
    client: httpx.AsyncClient, shelf: dict[str, Any]
) -> None:
    response = await client.get(PRODUCTS)
    body = response.json()
    assert set(body) == {"items", "total", "limit", "offset"}
    assert (body["total"], body["limit"], body["offset"]) == (5, 20, 0)
    assert [i["sku"] for i in body["items"]] == ["BOX-1", "CUP-1", "TEA-1", "MUG-1", "POT-1"]
    assert all(isinstance(i["price"], str) for i in body["items"])
    assert body["items"][2] == shelf["products"]["TEA-1"]


async def test_text_search_covers_name_sku_and_description(
    client: httpx.AsyncClient, shelf: dict[str, Any]
) -> None:
    assert sorted(await skus(client, q="TEA")) == ["MUG-1", "POT-1", "TEA-1"]
    assert await skus(client, q="cup-1") == ["CUP-1"]
    assert await skus(client, q="100%") == ["BOX-1"]  # % and _ are plain characters
    assert await skus(client, q="n_b") == ["BOX-1"]
    assert await skus(client, q="nothing like it") == []


async def test_price_range_and_in_stock_filters(
    client: httpx.AsyncClient, shelf: dict[str, Any]
) -> None:
    assert await skus(client, min_price="3.00", max_price="12") == ["CUP-1", "TEA-1", "MUG-1"]
    assert await skus(client, min_price="12.01") == ["POT-1"]
    assert await skus(client, max_price=1) == ["BOX-1"]
    assert "MUG-1" not in await skus(client, in_stock="true")
    assert len(await skus(client, in_stock="false")) == 5  # false means "no filter"


@pytest.mark.parametrize(
    ("sort", "key"),
    [
        ("name", lambda p: p["name"]),
        ("price", lambda p: Decimal(p["price"])),
        ("created_at", lambda p: p["created_at"]),
    ],
)
async def test_each_sort_both_ways(
    client: httpx.AsyncClient, shelf: dict[str, Any], sort: str, key: Any
) -> None:
    expected = [p["sku"] for p in sorted(shelf["products"].values(), key=key)]
    assert await skus(client, sort=sort) == expected
    assert await skus(client, sort=f"-{sort}") == expected[::-1]


async def test_paging_walks_every_product_once_with_a_correct_total(
    client: httpx.AsyncClient, shelf: dict[str, Any]
) -> None:
    seen = []
    for offset in (0, 2, 4):
        body = (
            await client.get(PRODUCTS, params={"limit": 2, "offset": offset, "sort": "price"})
        ).json()
        assert (body["total"], body["limit"], body["offset"]) == (5, 2, offset)
        seen += [i["sku"] for i in body["items"]]
    assert seen == ["BOX-1", "CUP-1", "TEA-1", "MUG-1", "POT-1"]
    past = (await client.get(PRODUCTS, params={"offset": 10})).json()
    assert (past["items"], past["total"]) == ([], 5)
    filtered = (await client.get(PRODUCTS, params={"in_stock": "true", "limit": 1})).json()
    assert (len(filtered["items"]), filtered["total"]) == (1, 4)


async def test_inactive_products_are_listed_only_for_admins_who_ask(
    client: httpx.AsyncClient, shelf: dict[str, Any]
) -> None:
    assert "OLD-1" not in await skus(client, headers=shelf["admin"])
    everything = await skus(client, headers=shelf["admin"], include_inactive="true")
    assert "OLD-1" in everything and len(everything) == 6
    customer = await auth_headers(client)
    forbidden = await client.get(PRODUCTS, params={"include_inactive": "true"}, headers=customer)
    assert_problem(forbidden, 403, "forbidden")
    anonymous = await client.get(PRODUCTS, params={"include_inactive": "true"})
    assert_problem(anonymous, 401, "unauthenticated")


async def test_a_write_shows_in_the_listing_at_once(
    client: httpx.AsyncClient, shelf: dict[str, Any]
) -> None:
    assert "CUP-1" in await skus(client, in_stock="true")  # now cached
    cup = shelf["products"]["CUP-1"]
    await client.post(
        f"{PRODUCTS}/{cup['id']}/stock",
        json={"delta": -4, "reason": "sold"},
        headers=shelf["admin"],
    )
    assert "CUP-1" not in await skus(client, in_stock="true")


@pytest.mark.parametrize(
    ("params", "where"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"offset": -1}, "offset"),
        ({"offset": 1_000_001}, "offset"),
        ({"sort": "stock"}, "sort"),
        ({"sort": "-sku"}, "sort"),
        ({"sort": "--name"}, "sort"),
        ({"sort": ""}, "sort"),
        ({"min_price": "-1"}, "min_price"),
        ({"max_price": "abc"}, "max_price"),
        ({"min_price": "1.001"}, "min_price"),
        ({"in_stock": "sometimes"}, "in_stock"),
        ({"q": ""}, "q"),
        ({"q": "x" * 101}, "q"),
        ({"q": "nul\x00"}, "q"),
        ({"min_price": "5", "max_price": "4"}, "min_price"),
    ],
)
async def test_bad_listing_queries_are_422_naming_the_parameter(
    client: httpx.AsyncClient, params: dict[str, Any], where: str
) -> None:
    body = assert_problem(await client.get(PRODUCTS, params=params), 422, "validation-error")
    assert ["query", where] in [err["loc"][:2] for err in body["errors"]], body["errors"]
