"""Errors the F&O twin answers with, each carrying its HTTP status.

::

    SandboxError
    └── ODataError                 a request the twin refuses; ``status`` is the HTTP status
        ├── BadRequestError        a malformed query, key or body (400)
        │   └── RefusedError       in F&O's envelope: "An error has occurred.", the reason inside (400)
        ├── NotFoundError          no such entity set or row (404)
        ├── ConflictError          a create for a key that already exists (409)
        ├── PreconditionFailedError  an If-Match naming an ETag the row no longer has (412)
        └── TooManyRequestsError  the caller crossed the throttling threshold (429, ``retry_after``)
"""

from __future__ import annotations

from dualbus.sandbox.errors import SandboxError

__all__ = [
    "BadRequestError",
    "ConflictError",
    "NotFoundError",
    "ODataError",
    "PreconditionFailedError",
    "RefusedError",
    "TooManyRequestsError",
]


class ODataError(SandboxError):
    """A request the twin refuses, answered with ``status`` and an OData error body."""

    status = 500


class BadRequestError(ODataError, ValueError):
    """The query, key or body is malformed."""

    status = 400


class RefusedError(BadRequestError):
    """A request F&O refuses with its generic outer message; ``inner_type`` names the server's exception."""

    def __init__(self, message: str, *, inner_type: str) -> None:
        super().__init__(message)
        self.inner_type = inner_type


class NotFoundError(ODataError, LookupError):
    """The entity set or row does not exist."""

    status = 404


class ConflictError(ODataError):
    """A row with the same key already exists."""

    status = 409


class PreconditionFailedError(ODataError):
    """The row changed since the ETag the request's If-Match names."""

    status = 412


class TooManyRequestsError(ODataError):
    """The caller must wait ``retry_after`` seconds before its next request."""

    status = 429

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
