"""The product entity's rules, without I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from backend.domain.catalog import (
    MAX_PRICE,
    MAX_STOCK,
    InvalidProduct,
    Product,
    ProductChanges,
    ProductQuery,
    ProductVersionMismatch,
    SortField,
    normalize_sku,
    to_price,
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def new_product(**overrides: object) -> Product:
    values: dict[str, object] = {
        "id": "p1",
        "sku": "sku-1",
        "name": " Kettle ",
        "description": None,
        "price": "19.9",
        "stock": 3,
        "currency": "EUR",
        "now": NOW,
    }
    values.update(overrides)
    return Product.new(**values)  # type: ignore[arg-type]


def test_a_new_product_is_normalised_active_and_at_version_1() -> None:
    product = new_product()
    assert product.sku == "SKU-1"
    assert product.name == "Kettle"
    assert product.price == Decimal("19.90")
    assert str(product.price) == "19.90"
    assert (product.is_active, product.version) == (True, 1)
    assert product.created_at == product.updated_at == NOW


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0", "0.00"),
        (5, "5.00"),
        ("1.5", "1.50"),
        ("12.34", "12.34"),
        (str(MAX_PRICE), "99999999.99"),
    ],
)
def test_prices_are_kept_with_two_places(raw: str | int, expected: str) -> None:
    assert str(to_price(raw)) == expected


@pytest.mark.parametrize(
    "raw", ["-0.01", "abc", "1.234", "NaN", "Infinity", "", str(MAX_PRICE + Decimal("0.01"))]
)
def test_bad_prices_are_refused(raw: str) -> None:
    with pytest.raises(InvalidProduct):
        to_price(raw)


@pytest.mark.parametrize("raw", ["", " ", "a b", "x" * 65, "-lead", "ünï"])
def test_bad_skus_are_refused(raw: str) -> None:
    with pytest.raises(InvalidProduct):
        normalize_sku(raw)


@pytest.mark.parametrize("stock", [-1, MAX_STOCK + 1])
def test_stock_out_of_range_is_refused(stock: int) -> None:
    with pytest.raises(InvalidProduct):
        new_product(stock=stock)


@pytest.mark.parametrize("name", ["", "   ", "n" * 201])
def test_bad_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidProduct):
        new_product(name=name)


def test_a_too_long_description_is_refused() -> None:
    with pytest.raises(InvalidProduct):
        new_product(description="d" * 5001)


def test_apply_moves_the_version_only_when_something_changes() -> None:
    product = new_product()
    later = NOW + timedelta(minutes=1)
    assert product.apply(ProductChanges(name="Kettle", price=Decimal("19.90")), later) is False
    assert (product.version, product.updated_at) == (1, NOW)

    assert product.apply(ProductChanges(price=Decimal("21"), is_active=False), later) is True
    assert (product.price, product.is_active, product.version) == (Decimal("21.00"), False, 2)
    assert product.updated_at == later


def test_apply_tells_clearing_the_description_from_leaving_it() -> None:
    product = new_product(description="hot water")
    product.apply(ProductChanges(name="Big kettle"), NOW)
    assert product.description == "hot water"
    product.apply(ProductChanges(description=None, description_set=True), NOW)
    assert product.description is None


def test_apply_validates_what_it_changes() -> None:
    product = new_product()
    with pytest.raises(InvalidProduct):
        product.apply(ProductChanges(price=Decimal("-1")), NOW)
    assert product.version == 1


def test_check_version_refuses_a_stale_expectation() -> None:
    product = new_product()
    product.check_version(None)
    product.check_version(1)
    with pytest.raises(ProductVersionMismatch) as raised:
        product.check_version(7)
    assert raised.value.extra["current_version"] == 1


def test_equal_queries_share_a_cache_key_and_different_ones_do_not() -> None:
    base = ProductQuery(q="tea", min_price=Decimal("1.00"), sort=SortField.PRICE)
    assert (
        base.cache_key()
        == ProductQuery(q="tea", min_price=Decimal("1.00"), sort=SortField.PRICE).cache_key()
    )
    variants = [
        ProductQuery(q="tea", min_price=Decimal("1.00"), sort=SortField.PRICE, descending=True),
        ProductQuery(q="tea", min_price=Decimal("1.00"), sort=SortField.NAME),
        ProductQuery(q="tea", min_price=Decimal("1.00"), sort=SortField.PRICE, offset=20),
        ProductQuery(q="tea", min_price=Decimal("1.00"), sort=SortField.PRICE, in_stock=True),
        ProductQuery(
            q="tea", min_price=Decimal("1.00"), sort=SortField.PRICE, include_inactive=True
        ),
    ]
    assert len({base.cache_key(), *(v.cache_key() for v in variants)}) == 6


def test_search_text_cannot_forge_another_querys_cache_key() -> None:
    forged = ProductQuery(q='x",null,"1.00')
    honest = ProductQuery(q="x", min_price=Decimal("1.00"))
    assert forged.cache_key() != honest.cache_key()
    assert (
        ProductQuery(min_price=Decimal("1.0")).cache_key()
        == ProductQuery(min_price=Decimal("1.00")).cache_key()
    )
