"""Request and response bodies of /products.

Prices go out as 2-place decimal strings ("19.90") and come in as a string or a JSON
number with at most 2 decimal places; never through a float in our code. Request bodies
forbid unknown fields: `stock` cannot be PATCHed (it moves only through /stock, where each
change is recorded), and a typo is a 422 naming the field, not a silent no-op.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)
from pydantic_core import PydanticCustomError

from backend.domain.catalog import (
    MAX_DESCRIPTION,
    MAX_NAME,
    MAX_PRICE,
    MAX_STOCK,
    Product,
    ProductChanges,
    ProductPage,
)


def no_nul(value: str) -> str:
    if "\x00" in value:  # PostgreSQL refuses NUL in text
        raise PydanticCustomError("string_nul", "Text must not contain NUL characters")
    return value


SKU_INPUT = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
PriceIn = Annotated[
    Decimal,
    Field(
        ge=0,
        le=MAX_PRICE,
        decimal_places=2,
        description="A decimal with at most 2 places, as a string (preferred) or a number.",
        examples=["19.90"],
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
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_NAME),
    AfterValidator(no_nul),
]
Description = Annotated[str, StringConstraints(max_length=MAX_DESCRIPTION), AfterValidator(no_nul)]
Stock = Annotated[int, Field(ge=0, le=MAX_STOCK, description="Available quantity.")]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProductCreateIn(StrictModel):
    sku: Sku
    name: Name
    description: Description | None = None
    price: PriceIn
    stock: Stock


class ProductUpdateIn(StrictModel):
    """Any of these; `description: null` clears the description."""

    name: Name | None = None
    description: Description | None = None
    price: PriceIn | None = None
    is_active: bool | None = None

    @model_validator(mode="after")
    def _something_to_change(self) -> ProductUpdateIn:
        if not self.model_fields_set:
            raise PydanticCustomError("empty_update", "Send at least one field to change")
        for field in ("name", "price", "is_active"):
            if field in self.model_fields_set and getattr(self, field) is None:
                raise PydanticCustomError(
                    "not_nullable", "{field} cannot be null", {"field": field}
                )
        return self

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
        ),
    ]
    reason: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
        AfterValidator(no_nul),
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
