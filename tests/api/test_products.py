"""/products over HTTP: admin CRUD, stock adjustments, ETags, who may do what, bad input."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.api.test_foundation import PROBLEM, assert_problem
from tests.helpers.auth import auth_headers
from tests.helpers.fast_reads import assert_answered_alike

PRODUCTS = "/api/v1/products"
PRODUCT_KEYS = {
    "id",
    "sku",
    "name",
    "description",
    "price",
    "currency",
    "stock",
    "is_active",
    "version",
    "created_at",
    "updated_at",
}


@pytest.fixture
async def admin(client: httpx.AsyncClient) -> dict[str, str]:
    return await auth_headers(client, role="admin")


@pytest.fixture
async def customer(client: httpx.AsyncClient) -> dict[str, str]:
    return await auth_headers(client, role="customer")


def new_product(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "sku": f"sku-{uuid.uuid4().hex[:8]}",
        "name": "Green tea",
        "description": "100 g, loose leaf",
        "price": "4.50",
        "stock": 10,
    }
    body.update(overrides)
    return body


async def create(client: httpx.AsyncClient, admin: dict[str, str], **overrides: Any) -> Any:
    response = await client.post(PRODUCTS, json=new_product(**overrides), headers=admin)
    assert response.status_code == 201, response.text
    return response.json()


# --------------------------------------------------------------------------- create and read
async def test_admin_creates_a_product(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    response = await client.post(
        PRODUCTS, json=new_product(sku=" tea-1 ", price=19.9, stock=3), headers=admin
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == PRODUCT_KEYS
    assert uuid.UUID(body["id"])
    assert (body["sku"], body["price"], body["currency"], body["stock"]) == (
        "TEA-1",
        "19.90",
        "EUR",
        3,
    )
    assert (body["is_active"], body["version"]) == (True, 1)
    assert body["created_at"] == body["updated_at"]
    assert response.headers["location"] == f"{PRODUCTS}/{body['id']}"
    assert response.headers["etag"] == '"1"'

    fetched = await client.get(response.headers["location"])  # anyone may read it
    assert fetched.status_code == 200
    assert fetched.json() == body
    assert fetched.headers["etag"] == '"1"'
    assert fetched.headers["cache-control"] == "no-cache"


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("5", "5.00"),
        (5, "5.00"),
        ("0.1", "0.10"),
        (0, "0.00"),
        ("007.5", "7.50"),
        ("12.30", "12.30"),
    ],
)
async def test_price_is_always_a_two_place_string(
    client: httpx.AsyncClient, admin: dict[str, str], given: Any, shown: str
) -> None:
    assert (await create(client, admin, price=given))["price"] == shown


async def test_a_duplicate_sku_is_409_whatever_its_case(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    await create(client, admin, sku="MUG-1")
    response = await client.post(PRODUCTS, json=new_product(sku="mug-1"), headers=admin)
    body = assert_problem(response, 409, "sku-taken")
    assert body["sku"] == "MUG-1"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("price", "-1.00"),
        ("price", -1),
        ("price", "abc"),
        ("price", "1.234"),
        ("price", 1.234),
        ("price", "NaN"),
        ("price", True),
        ("price", None),
        ("price", "100000000.00"),
        # A price string is plain digits, as the document's pattern says: no sign, exponent,
        # spaces or grouping (a number may be 5, 5.0 or 5e0: it is a number).
        ("price", "-0"),
        ("price", "+5"),
        ("price", "5e0"),
        ("price", " 5"),
        ("price", "1,000"),
        ("price", ".5"),
        ("stock", -1),
        ("stock", 1.5),
        ("stock", "many"),
        ("stock", 2_147_483_648),
        ("sku", ""),
        ("sku", "has space"),
        ("sku", "x" * 65),
        ("name", ""),
        ("name", "   "),
        ("name", "x" * 201),
        ("name", "nul\x00byte"),
        ("description", "d" * 5001),
        ("is_active", False),  # not a create field
    ],
)
async def test_bad_create_input_is_422_naming_the_field(
    client: httpx.AsyncClient, admin: dict[str, str], field: str, value: Any
) -> None:
    response = await client.post(PRODUCTS, json=new_product(**{field: value}), headers=admin)
    body = assert_problem(response, 422, "validation-error")
    assert any(err["loc"][:2] == ["body", field] for err in body["errors"]), body["errors"]


@pytest.mark.parametrize("missing", ["sku", "name", "price", "stock"])
async def test_a_missing_required_field_is_422(
    client: httpx.AsyncClient, admin: dict[str, str], missing: str
) -> None:
    body = new_product()
    del body[missing]
    problem = assert_problem(
        await client.post(PRODUCTS, json=body, headers=admin), 422, "validation-error"
    )
    assert ["body", missing] in [err["loc"] for err in problem["errors"]]


async def test_an_unknown_or_malformed_id_is_404_or_422(client: httpx.AsyncClient) -> None:
    missing = await client.get(f"{PRODUCTS}/{uuid.uuid4()}")
    assert_problem(missing, 404, "product-not-found")
    body = assert_problem(await client.get(f"{PRODUCTS}/not-a-uuid"), 422, "validation-error")
    assert body["errors"][0]["loc"] == ["path", "product_id"]


async def test_if_none_match_gives_304_while_the_version_holds(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    product = await create(client, admin)
    url = f"{PRODUCTS}/{product['id']}"
    for header in ('"1"', 'W/"1"', '"7", "1"', "*"):
        response = await client.get(url, headers={"If-None-Match": header})
        assert response.status_code == 304, header
        assert response.content == b""
        assert response.headers["etag"] == '"1"'
    await client.patch(url, json={"name": "New"}, headers=admin)
    changed = await client.get(url, headers={"If-None-Match": '"1"'})
    assert changed.status_code == 200
    assert changed.headers["etag"] == '"2"'
    assert changed.json()["name"] == "New"


@pytest.mark.parametrize("header", ["2", "null", '"1" "2"', "W/2"])
async def test_a_malformed_if_none_match_is_a_400(
    client: httpx.AsyncClient, admin: dict[str, str], header: str
) -> None:
    """Not a list of entity tags: refused as the document says, not answered 200 (a cache
    sending it has a bug that a silent 200 would hide)."""
    product = await create(client, admin)
    response = await client.get(f"{PRODUCTS}/{product['id']}", headers={"If-None-Match": header})
    body = assert_problem(response, 400, "bad-request")
    assert "If-None-Match" in body["detail"]


async def test_anonymous_reads_answered_before_the_framework_match_the_route(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    """The HTTP edge answers a token-less GET /products/{id} itself; a request with a non-bearer
    Authorization header (anonymous too) goes through the FastAPI route. Same answers."""
    product = await create(client, admin)
    gone = await create(client, admin)
    assert (await client.delete(f"{PRODUCTS}/{gone['id']}", headers=admin)).status_code == 204
    routed = {"Authorization": "Basic dXNlcjpwYXNz"}
    cases = [
        (product["id"], {}),
        (product["id"], {"If-None-Match": '"1"'}),
        (product["id"], {"If-None-Match": '"7"'}),
        (product["id"], {"If-None-Match": "2"}),
        (gone["id"], {}),
        (str(uuid.uuid4()), {}),
    ]
    for product_id, headers in cases:
        url = f"{PRODUCTS}/{product_id}"
        fast = await client.get(url, headers=headers)
        slow = await client.get(url, headers={**headers, **routed})
        assert_answered_alike(fast, slow, (product_id, headers))


# --------------------------------------------------------------------------- update and delete
async def test_patch_changes_fields_and_moves_the_version(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    product = await create(client, admin)
    url = f"{PRODUCTS}/{product['id']}"
    response = await client.patch(
        url,
        json={"name": " Black tea ", "price": 5, "description": None},
        headers={**admin, "If-Match": '"1"'},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["name"], body["price"], body["description"], body["version"]) == (
        "Black tea",
        "5.00",
        None,
        2,
    )
    assert body["sku"] == product["sku"] and body["stock"] == product["stock"]
    assert response.headers["etag"] == '"2"'
    assert (await client.get(url)).json() == body  # the writer sees its write at once


async def test_a_stale_if_match_is_412_and_changes_nothing(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    product = await create(client, admin)
    url = f"{PRODUCTS}/{product['id']}"
    assert (await client.patch(url, json={"name": "Two"}, headers=admin)).status_code == 200
    for header in ('"1"', 'W/"2"', "garbage", '"1", "3"'):
        response = await client.patch(
            url, json={"name": "Lost"}, headers={**admin, "If-Match": header}
        )
        body = assert_problem(response, 412, "precondition-failed")
        assert body["current_version"] == 2
    for version, template, price in [
        (2, '"{}"', "7.00"),
        (3, '"1", "{}"', "8.00"),
        (4, "*", "9.00"),
    ]:
        headers = {**admin, "If-Match": template.format(version)}
        ok = await client.patch(url, json={"price": price}, headers=headers)
        assert ok.status_code == 200, (template, ok.text)
        assert ok.json()["version"] == version + 1
    assert (await client.get(url)).json()["name"] == "Two"


async def test_a_patch_that_changes_nothing_keeps_the_version(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    product = await create(client, admin)
    response = await client.patch(
        f"{PRODUCTS}/{product['id']}", json={"name": product["name"]}, headers=admin
    )
    assert response.json()["version"] == 1


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"stock": 5},
        {"sku": "OTHER"},
        {"name": None},
        {"price": None},
        {"is_active": None},
        {"price": "-1"},
        {"price": "1.001"},
        {"is_active": "maybe"},
    ],
)
async def test_bad_patches_are_422(
    client: httpx.AsyncClient, admin: dict[str, str], body: dict[str, Any]
) -> None:
    product = await create(client, admin)
    response = await client.patch(f"{PRODUCTS}/{product['id']}", json=body, headers=admin)
    problem = assert_problem(response, 422, "validation-error")
    assert problem["errors"]


async def test_patching_an_unknown_product_is_404(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    response = await client.patch(f"{PRODUCTS}/{uuid.uuid4()}", json={"name": "x"}, headers=admin)
    assert_problem(response, 404, "product-not-found")


async def test_delete_is_soft_and_hides_the_product_from_everyone_but_admins(
    client: httpx.AsyncClient, admin: dict[str, str], customer: dict[str, str]
) -> None:
    product = await create(client, admin)
    url = f"{PRODUCTS}/{product['id']}"
    response = await client.delete(url, headers=admin)
    assert response.status_code == 204
    assert response.content == b""
    assert_problem(await client.get(url), 404, "product-not-found")
    assert_problem(await client.get(url, headers=customer), 404, "product-not-found")
    as_admin = await client.get(url, headers=admin)
    assert (as_admin.json()["is_active"], as_admin.json()["version"]) == (False, 2)
    assert (await client.delete(url, headers=admin)).status_code == 204  # idempotent
    assert_problem(
        await client.delete(f"{PRODUCTS}/{uuid.uuid4()}", headers=admin), 404, "product-not-found"
    )
    # An admin can bring it back.
    revived = await client.patch(url, json={"is_active": True}, headers=admin)
    assert revived.json()["is_active"] is True
    assert (await client.get(url)).status_code == 200


async def test_delete_honours_if_match(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    product = await create(client, admin)
    url = f"{PRODUCTS}/{product['id']}"
    stale = await client.delete(url, headers={**admin, "If-Match": '"9"'})
    assert_problem(stale, 412, "precondition-failed")
    assert (await client.delete(url, headers={**admin, "If-Match": '"1"'})).status_code == 204


# --------------------------------------------------------------------------- stock
async def test_stock_adjustments_move_the_stock_and_are_recorded(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    product = await create(client, admin, stock=5)
    url = f"{PRODUCTS}/{product['id']}/stock"
    down = await client.post(url, json={"delta": -3, "reason": "damaged"}, headers=admin)
    assert down.status_code == 200, down.text
    assert (down.json()["stock"], down.json()["version"]) == (2, 2)
    assert down.headers["etag"] == '"2"'
    up = await client.post(url, json={"delta": 10, "reason": "delivery"}, headers=admin)
    assert up.json()["stock"] == 12
    assert (await client.get(f"{PRODUCTS}/{product['id']}")).json()["stock"] == 12

    container = client.app.state.container  # type: ignore[attr-defined]
    records = await container.catalog.adjustments(product["id"])
    assert [(r.delta, r.reason, r.stock_after) for r in records] == [
        (-3, "damaged", 2),
        (10, "delivery", 12),
    ]
    assert all(r.actor_id for r in records)


async def test_stock_below_zero_is_409_and_changes_nothing(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    product = await create(client, admin, stock=2)
    url = f"{PRODUCTS}/{product['id']}/stock"
    response = await client.post(url, json={"delta": -3, "reason": "oversold"}, headers=admin)
    body = assert_problem(response, 409, "insufficient-stock")
    assert body["stock"] == 2
    assert (await client.get(f"{PRODUCTS}/{product['id']}")).json()["stock"] == 2


@pytest.mark.parametrize(
    "body",
    [
        {"delta": 0, "reason": "nothing"},
        {"delta": 1},
        {"reason": "no delta"},
        {"delta": 1, "reason": ""},
        {"delta": 1.5, "reason": "half"},
        {"delta": "x", "reason": "text"},
        {"delta": 2_147_483_648, "reason": "too big"},
        {"delta": 1, "reason": "r" * 201},
        {"delta": 1, "reason": "ok", "extra": 1},
    ],
)
async def test_bad_stock_adjustments_are_422(
    client: httpx.AsyncClient, admin: dict[str, str], body: dict[str, Any]
) -> None:
    product = await create(client, admin)
    response = await client.post(f"{PRODUCTS}/{product['id']}/stock", json=body, headers=admin)
    assert assert_problem(response, 422, "validation-error")["errors"]


async def test_adjusting_an_unknown_product_is_404(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    response = await client.post(
        f"{PRODUCTS}/{uuid.uuid4()}/stock", json={"delta": 1, "reason": "x"}, headers=admin
    )
    assert_problem(response, 404, "product-not-found")


# --------------------------------------------------------------------------- who may write
async def test_writes_need_an_admin(
    client: httpx.AsyncClient, admin: dict[str, str], customer: dict[str, str]
) -> None:
    product = await create(client, admin)
    url = f"{PRODUCTS}/{product['id']}"
    writes = [
        ("POST", PRODUCTS, new_product()),
        ("PATCH", url, {"name": "x"}),
        ("DELETE", url, None),
        ("POST", f"{url}/stock", {"delta": 1, "reason": "x"}),
    ]
    for method, path, body in writes:
        anonymous = await client.request(method, path, json=body)
        assert_problem(anonymous, 401, "unauthenticated")
        assert anonymous.headers["www-authenticate"] == "Bearer"
        forbidden = await client.request(method, path, json=body, headers=customer)
        assert_problem(forbidden, 403, "forbidden")
    after = (await client.get(url)).json()
    assert after == product  # nothing changed


async def test_a_bad_token_is_401_even_on_reads(client: httpx.AsyncClient) -> None:
    response = await client.get(PRODUCTS, headers={"Authorization": "Bearer not-a-token"})
    assert_problem(response, 401, "invalid-token")


async def test_the_routes_are_documented_with_their_errors(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    item = schema["paths"]["/api/v1/products/{product_id}"]
    assert {"200", "304", "404", "422"} <= set(item["get"]["responses"])
    assert {"401", "403", "404", "412", "422"} <= set(item["patch"]["responses"])
    assert "409" in schema["paths"]["/api/v1/products"]["post"]["responses"]
    assert "409" in schema["paths"]["/api/v1/products/{product_id}/stock"]["post"]["responses"]
    price = schema["components"]["schemas"]["ProductOut"]["properties"]["price"]
    assert price["type"] == "string"


async def test_a_body_that_is_not_json_is_a_documented_400(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    # Found by the OpenAPI fuzzer (tests/e2e/test_fuzz_openapi.py): the 400 was real but the
    # document did not list it, so the response broke the schema.
    response = await client.post(
        PRODUCTS, content=b"\x00", headers={**admin, "content-type": "application/json"}
    )
    body = assert_problem(response, 400, "malformed-request")
    assert body["detail"] == "The request body is not valid JSON."
    assert "errors" not in body  # the raw input is never echoed back
    schema = (await client.get("/openapi.json")).json()
    documented = schema["paths"][PRODUCTS]["post"]["responses"]["400"]["content"]
    assert documented == {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}
