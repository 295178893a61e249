"""Errors the F&O twin answers with, each carrying its HTTP status.

::

    SandboxError
    └── ODataError                 a request the twin refuses; ``status`` is the HTTP status
        ├── BadRequestError        a malformed query, key or body (400)
        │   └── RefusedError       in F&O's envelope: "An error has occurred.", the reason inside (400)
        │       └── NoRowToUpdateError  a PATCH or DELETE whose key names no row (400, not 404)
        ├── NotFoundError          no such entity set, or no row for a GET by key (404)
        ├── ConflictError          a create for a key that already exists (409)
        ├── PreconditionFailedError  an If-Match naming an ETag the row no longer has (412)
        └── TooManyRequestsError  the caller crossed the throttling threshold (429, ``retry_after``)
"""

from __future__ import annotations

from dualbus.sandbox.errors import SandboxError

__all__ = [
    "NO_ROW_TO_UPDATE",
    "BadRequestError",
    "ConflictError",
    "NoRowToUpdateError",
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


# F&O's answer to a PATCH or DELETE of a row that does not exist (deleted meanwhile): 400, its generic outer
# message, this text inside; not the 404 OData suggests. Clients that handle it as "the row is gone":
# https://github.com/hotgluexyz/target-dynamics-finance/blob/ae05880f01239475781427e00b5df06a6da76e16/target_dynamics_finance/client.py
# (validate_response: status 400 and this text, "record no longer exists in Dynamics Finance"; since
# 18674dccae96bd6a793f2c996328765cb4661e77). The envelope around it (code "", "An error has occurred.", the
# reason in innererror.message) is that of a real F&O 400 answered to a PATCH:
# https://github.com/saintsystems/dynamics-sdk-php/issues/8
NO_ROW_TO_UPDATE = "No resources were found when selecting for update."
# The exception type F&O names in innererror.type for it is not published: left empty, as the stack trace is.
_UNPUBLISHED_TYPE = ""


class NoRowToUpdateError(RefusedError):
    """A PATCH or DELETE whose key names no row the request can see, refused as F&O refuses it."""

    def __init__(self) -> None:
        super().__init__(NO_ROW_TO_UPDATE, inner_type=_UNPUBLISHED_TYPE)


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
