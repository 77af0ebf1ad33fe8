"""The conditional headers, read once for every versioned resource (RFC 9110 13.1)."""

from __future__ import annotations

import re

import pytest

from backend.api.etags import CONDITION_PATTERN, etag, if_match_versions, none_match
from backend.domain.errors import DomainError, ErrorKind


@pytest.mark.parametrize(
    ("header", "versions"),
    [
        (None, None),
        ("*", None),
        (" * ", None),
        ('"3"', {3}),
        ('"3", "5"', {3, 5}),
        ('W/"3"', set()),  # strong comparison: a weak tag never matches
        ('W/"3", "4"', {4}),
        ('"abc"', set()),  # a tag we never issued
        ("3", set()),  # malformed: not a quoted tag
        ("", set()),
    ],
)
def test_if_match_is_a_set_of_strong_versions(
    header: str | None, versions: set[int] | None
) -> None:
    assert if_match_versions(header) == (None if versions is None else frozenset(versions))


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        (None, False),
        ("*", True),
        ('"3"', True),
        ('W/"3"', True),  # weak comparison
        ('"1", W/"3"', True),
        ('"4"', False),
    ],
)
def test_if_none_match_compares_weakly(header: str | None, matches: bool) -> None:
    assert none_match(header, 3) is matches


@pytest.mark.parametrize("header", ["3", "null", '"1" "2"', "", '"a"b"', "W/3"])
def test_a_malformed_if_none_match_is_refused(header: str) -> None:
    with pytest.raises(DomainError) as refused:
        none_match(header, 3)
    assert refused.value.kind is ErrorKind.BAD_REQUEST


def test_the_documented_pattern_admits_what_we_issue_and_lists_of_it() -> None:
    pattern = re.compile(CONDITION_PATTERN)
    for good in (etag(3), "*", 'W/"3"', '"1", "2"', ' "1" '):
        assert pattern.match(good), good
    for bad in ("3", "null", '"1" "2"', "", '"a"b"'):
        assert not pattern.match(bad), bad
