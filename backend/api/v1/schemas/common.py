"""What every request body shares: unknown fields refused, text without NUL, and the
document saying exactly that (so a client generated from it sends what we accept)."""

from __future__ import annotations

from typing import Any, ClassVar, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    model_validator,
)
from pydantic_core import PydanticCustomError

# JSON Schema (ECMA-262 and Python `re` alike): no NUL anywhere, and, for text that is
# stripped and must not end up empty, at least one character that is not whitespace.
NO_NUL_PATTERN = r"^[^\u0000]*$"
NOT_BLANK_PATTERN = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"


def no_nul(value: str) -> str:
    if "\x00" in value:  # PostgreSQL refuses NUL in text
        raise PydanticCustomError("string_nul", "Text must not contain NUL characters")
    return value


# Metadata for `Annotated[str, ...]`: the check, and the pattern the document shows.
NUL_FREE = (AfterValidator(no_nul), Field(json_schema_extra={"pattern": NO_NUL_PATTERN}))
NOT_BLANK = (AfterValidator(no_nul), Field(json_schema_extra={"pattern": NOT_BLANK_PATTERN}))


def json_integer(value: Any) -> Any:
    """A JSON number with no fraction, as JSON Schema's `integer` means: not `true`, not
    `"5"` (lax pydantic took both), while `5.0` is still 5."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    return value


# Body fields take what the document says and nothing more. INTEGER goes after the field's
# Field(...) in `Annotated[int, Field(...), INTEGER]` (before it, the bounds would leave the
# document as `ge`/`le` instead of minimum/maximum); booleans are only true and false.
INTEGER = BeforeValidator(json_integer)
JsonBool = StrictBool


class StrictModel(BaseModel):
    """A request body: a field we do not know is a 422 naming it, not a silent drop."""

    model_config = ConfigDict(extra="forbid")


def _partial_update_schema(schema: dict[str, Any], model: type[BaseModel]) -> None:
    schema["minProperties"] = 1
    for name in getattr(model, "not_nullable", ()):
        prop = schema["properties"][name]
        branches = [b for b in prop.pop("anyOf", []) if b.get("type") != "null"]
        if len(branches) == 1:
            prop.update(branches[0])
        elif branches:
            prop["anyOf"] = branches


class PartialUpdate(StrictModel):
    """A PATCH body: any of its fields, at least one (`{}` is refused: nothing to change).
    Fields in `not_nullable` may be left out but not sent as null; the document says so."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_partial_update_schema)
    not_nullable: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="after")
    def _something_to_change(self) -> Self:
        if not self.model_fields_set:
            raise PydanticCustomError("empty_update", "Send at least one field to change")
        for name in self.not_nullable:
            if name in self.model_fields_set and getattr(self, name) is None:
                raise PydanticCustomError("not_nullable", "{field} cannot be null", {"field": name})
        return self
