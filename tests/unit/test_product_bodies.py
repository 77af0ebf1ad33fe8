"""GET /products/{id} serialises each cached product object once."""

from __future__ import annotations

import json
from dataclasses import replace

from backend.api.v1.products import product_body
from tests.unit.test_catalog_cache import product


def test_the_same_cached_object_gets_the_same_body_without_serialising_again() -> None:
    cached = product("p-bodies-1")
    first = product_body(cached)
    assert json.loads(first)["name"] == "Kettle"
    assert product_body(cached) is first


def test_a_new_object_for_the_same_product_gets_a_new_body() -> None:
    cached = product("p-bodies-2")
    old = product_body(cached)
    changed = replace(cached, name="Teapot", version=cached.version + 1)
    assert json.loads(product_body(changed))["name"] == "Teapot"
    # Even an equal-looking object is serialised anew: only identity proves it is the one
    # the body was made from.
    assert product_body(replace(cached)) is not old
