"""Request and response bodies of /products.

Prices go out as 2-place decimal strings ("19.90") and come in as a string or a JSON
number with at most 2 decimal places; never through a float in our code. Request bodies
forbid unknown fields: `stock` cannot be PATCHed (it moves only through /stock, where each
change is recorded), and a typo is a 422 naming the field, not a silent no-op.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import (
    BaseModel,
    BeforeValidator,
    Field,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from backend.api.v1.schemas.common import (
    INTEGER,
    NOT_BLANK,
    NUL_FREE,
    JsonBool,
    PartialUpdate,
    StrictModel,
)
from backend.domain.catalog import (
    MAX_DESCRIPTION,
    MAX_NAME,
    MAX_PRICE,
    MAX_STOCK,
    Product,
    ProductChanges,
    ProductPage,
)

SKU_INPUT = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
# A string must be plain digits (no sign, exponent or spaces); a number must be a whole
# number of cents. Both are checked here and stated in the document.
PRICE_STRING = rf"^\d{{1,{len(str(int(MAX_PRICE)))}}}(\.\d{{1,2}})?$"


def _plain_price_string(value: object) -> object:
    if isinstance(value, str) and not re.match(PRICE_STRING, value):
        raise PydanticCustomError(
            "price_format", "A price string is digits with at most 2 decimal places, e.g. 19.90"
        )
    return value


PriceIn = Annotated[
    Decimal,
    BeforeValidator(_plain_price_string),
    Field(ge=0, le=MAX_PRICE, decimal_places=2),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": PRICE_STRING},
                {"type": "number", "minimum": 0, "maximum": float(MAX_PRICE), "multipleOf": 0.01},
            ],
            "description": "A decimal with at most 2 places, as a string (preferred) or a number.",
            "examples": ["19.90"],
        }
    ),
]
MoneyOut = Annotated[
    str, Field(pattern=r"^\d+\.\d{2}$", description="2-place decimal", examples=["19.90"])
]
Sku = Annotated[
    str,
    # The pattern is checked before `to_upper` applies, hence both cases.
    StringConstraints(strip_whitespace=True, to_upper=True, pattern=SKU_INPUT),
    Field(
        description="1..64 letters, digits, '.', '_' or '-'; unique, case-insensitively "
        "(stored upper-case).",
        examples=["TEA-GREEN-100G"],
    ),
]
Name = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_NAME), *NOT_BLANK
]
Description = Annotated[str, StringConstraints(max_length=MAX_DESCRIPTION), *NUL_FREE]
Stock = Annotated[int, Field(ge=0, le=MAX_STOCK, description="Available quantity."), INTEGER]


class ProductCreateIn(StrictModel):
    sku: Sku
    name: Name
    description: Description | None = None
    price: PriceIn
    stock: Stock


class ProductUpdateIn(PartialUpdate):
    """Any of these; `description: null` clears the description."""

    not_nullable = ("name", "price", "is_active")
    name: Name | None = None
    description: Description | None = None
    price: PriceIn | None = None
    is_active: JsonBool | None = None

    def changes(self) -> ProductChanges:
        return ProductChanges(
            name=self.name,
            description=self.description,
            description_set="description" in self.model_fields_set,
            price=self.price,
            is_active=self.is_active,
        )


class StockAdjustmentIn(StrictModel):
    delta: Annotated[
        int,
        Field(
            ge=-MAX_STOCK,
            le=MAX_STOCK,
            description="Added to the stock (negative to remove); not 0.",
            examples=[-3, 25],
            json_schema_extra={"not": {"const": 0}},
        ),
        INTEGER,
    ]
    reason: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
        *NOT_BLANK,
        Field(examples=["stocktake correction"]),
    ]

    @model_validator(mode="after")
    def _not_zero(self) -> StockAdjustmentIn:
        if self.delta == 0:
            raise PydanticCustomError("zero_delta", "delta must not be 0")
        return self


class ProductOut(BaseModel):
    id: Annotated[str, Field(json_schema_extra={"format": "uuid"})]
    sku: str
    name: str
    description: str | None
    price: MoneyOut
    currency: Annotated[str, Field(examples=["EUR"])]
    stock: int
    is_active: bool
    version: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, product: Product) -> ProductOut:
        # model_construct: the values come from our own entity, already validated.
        return cls.model_construct(
            id=product.id,
            sku=product.sku,
            name=product.name,
            description=product.description,
            price=f"{product.price:.2f}",
            currency=product.currency,
            stock=product.stock,
            is_active=product.is_active,
            version=product.version,
            created_at=product.created_at,
            updated_at=product.updated_at,
        )


class ProductPageOut(BaseModel):
    items: list[ProductOut]
    total: int
    limit: int
    offset: int

    @classmethod
    def of(cls, page: ProductPage) -> ProductPageOut:
        return cls.model_construct(
            items=[ProductOut.of(p) for p in page.items],
            total=page.total,
            limit=page.limit,
            offset=page.offset,
        )
