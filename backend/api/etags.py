"""Entity tags of versioned resources (products, orders): `ETag: "<version>"`.

One reading of the conditional headers for every resource (RFC 9110 section 13.1):
- `If-Match` (writes) uses the strong comparison: `"3"` matches version 3, `W/"3"` never
  does; a list matches any of its tags; `*` is no condition. A tag we never issued (or a
  malformed header) matches nothing, so the write is refused 412 like a stale one.
- `If-None-Match` (reads) uses the weak comparison: `"3"` and `W/"3"` both match version 3;
  `*` matches anything that exists. A malformed one is refused 400: a cache that sends one
  has a bug, and answering 200 would hide it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Header

from backend.domain.errors import DomainError

_TAG = re.compile(r'^\s*(W/)?"([^"]*)"\s*$')
# What the document says a client sends (a malformed If-Match is answered 412, a malformed
# If-None-Match 400).
_TAG_GRAMMAR = r'(W/)?"[\x21\x23-\x7e]*"'
CONDITION_PATTERN = rf"^\s*(\*|{_TAG_GRAMMAR}(\s*,\s*{_TAG_GRAMMAR})*)\s*$"
_CONDITION = re.compile(CONDITION_PATTERN)


def etag(version: int) -> str:
    return f'"{version}"'


def _tags(header: str) -> Iterator[tuple[bool, str]]:
    """(weak, opaque tag) of each well-formed entry of a list header."""
    for candidate in header.split(","):
        if (match := _TAG.match(candidate)) is not None:
            yield match.group(1) is not None, match.group(2)


def if_match_versions(if_match: str | None) -> frozenset[int] | None:
    """The versions an `If-Match` accepts: None when there is no condition (absent or `*`),
    else the strong tags that are versions (possibly none: then nothing can match)."""
    if if_match is None or if_match.strip() == "*":
        return None
    return frozenset(int(tag) for weak, tag in _tags(if_match) if not weak and tag.isdigit())


def none_match(if_none_match: str | None, version: int) -> bool:
    """True when `If-None-Match` names the current version: answer 304."""
    if if_none_match is None:
        return False
    if _CONDITION.match(if_none_match) is None:
        raise DomainError(
            'If-None-Match must be "*" or a list of entity tags such as "3" or W/"3".'
        )
    if if_none_match.strip() == "*":
        return True
    current = str(version)
    return any(tag == current for _weak, tag in _tags(if_none_match))


def _header_doc(description: str) -> dict[str, Any]:
    return {"description": description, "json_schema_extra": {"pattern": CONDITION_PATTERN}}


IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        **_header_doc(
            'Apply only if the resource is still at this version (`"3"`, or a list; `*` for '
            "any): otherwise 412. Strong comparison: a weak tag never matches."
        ),
    ),
]
_IF_NONE_MATCH = (
    'The ETag you hold (`"3"`, or `W/"3"`): 304 without a body if still current; a value '
    "that is not a list of entity tags is refused 400."
)
IfNoneMatch = Annotated[str | None, Header(alias="If-None-Match", **_header_doc(_IF_NONE_MATCH))]
# The same parameter, for a route that reads the header itself (`openapi_extra=`).
IF_NONE_MATCH_DOC: dict[str, Any] = {
    "parameters": [
        {
            "name": "If-None-Match",
            "in": "header",
            "required": False,
            "description": _IF_NONE_MATCH,
            "schema": {"type": "string", "pattern": CONDITION_PATTERN},
        }
    ]
}
