"""The pagination convention of API.md, declared once: `?limit=` 1..100 (default 20),
`?offset=` >= 0; anything else is a 422."""

from typing import Annotated

from fastapi import Query

Limit = Annotated[int, Query(ge=1, le=100, description="Page size (1..100).")]
Offset = Annotated[int, Query(ge=0, le=1_000_000, description="Items to skip.")]
DEFAULT_LIMIT = 20
