"""Domain exceptions. They carry a semantic kind, never an HTTP status.

`backend/api/errors.py` maps each kind to a status once; a new error only has to
pick its kind and a stable slug (the last segment of the problem `type`).
"""

from __future__ import annotations

from enum import Enum
from typing import Any


class ErrorKind(Enum):
    BAD_REQUEST = "bad_request"
    UNAUTHENTICATED = "unauthenticated"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    PRECONDITION_FAILED = "precondition_failed"
    INVALID = "invalid"
    RATE_LIMITED = "rate_limited"
    UNAVAILABLE = "unavailable"


class DomainError(Exception):
    kind: ErrorKind = ErrorKind.BAD_REQUEST
    slug: str = "bad-request"
    title: str = "Bad request"
    retry_after: int | None = None  # seconds, when the same request can be sent again

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        self.detail = detail or self.title
        # Extension members of the problem body (RFC 9457 section 3.2), e.g. product_ids.
        self.extra: dict[str, Any] = extra
        super().__init__(self.detail)


class NotFound(DomainError):
    kind = ErrorKind.NOT_FOUND
    slug = "not-found"
    title = "Not found"


class Conflict(DomainError):
    kind = ErrorKind.CONFLICT
    slug = "conflict"
    title = "Conflict"


class InvalidInput(DomainError):
    kind = ErrorKind.INVALID
    slug = "validation-error"
    title = "Invalid input"


class PermissionDenied(DomainError):
    kind = ErrorKind.FORBIDDEN
    slug = "forbidden"
    title = "Forbidden"


class NotAuthenticated(DomainError):
    kind = ErrorKind.UNAUTHENTICATED
    slug = "unauthenticated"
    title = "Not authenticated"


class StaleVersion(DomainError):
    kind = ErrorKind.PRECONDITION_FAILED
    slug = "precondition-failed"
    title = "Precondition failed"


class RateLimited(DomainError):
    kind = ErrorKind.RATE_LIMITED
    slug = "quota-exceeded"
    title = "Too many requests"

    def __init__(self, detail: str | None = None, *, retry_after: int, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.retry_after = max(1, int(retry_after))


class DependencyUnavailable(DomainError):
    """A backing service (database, Redis, broker) cannot be reached right now."""

    kind = ErrorKind.UNAVAILABLE
    slug = "dependency-unavailable"
    title = "Service unavailable"

    def __init__(self, dependency: str, detail: str | None = None) -> None:
        super().__init__(detail or f"The {dependency} is unavailable; retry shortly.")
        self.dependency = dependency


class TransactionAborted(DomainError):
    """The database aborted the request's transaction to settle a conflict with a concurrent
    one (a deadlock or a serialization failure): nothing was changed, and the same request
    can simply be sent again."""

    kind = ErrorKind.UNAVAILABLE
    slug = "transaction-aborted"
    title = "Transaction aborted by a concurrent one"
    retry_after = 1  # the conflict is already over
