"""Errors the Dataverse twin answers with, in the Web API's shape: ``{"error": {"code", "message"}}``.

::

    SandboxError
    └── DataverseApiError          an HTTP status plus Dataverse's hexadecimal error code and message

Status codes per error type: https://learn.microsoft.com/power-apps/developer/data-platform/webapi/compose-http-requests-handle-errors
Error codes: https://learn.microsoft.com/power-apps/developer/data-platform/reference/web-service-error-codes
"""

from __future__ import annotations

from typing import Any

from sandbox.errors import SandboxError

__all__ = [
    "DataverseApiError",
    "bad_request",
    "concurrency_mismatch",
    "duplicate_record",
    "expired_delta_token",
    "key_not_found",
    "max_length_exceeded",
    "object_not_found",
    "resource_not_found",
]


class DataverseApiError(SandboxError):
    """A request the twin refuses, carrying the status and the error body Dataverse would send."""

    def __init__(
        self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The JSON error body."""
        return {"error": {"code": self.code, "message": self.message}}


def object_not_found(logical_name: str, row_id: str) -> DataverseApiError:
    """ObjectDoesNotExist (0x80040217): no row has that id; also a bind to a missing related row."""
    return DataverseApiError(404, "0x80040217", f"{logical_name} With Id = {row_id} Does Not Exist")


def key_not_found(logical_name: str) -> DataverseApiError:
    """RecordNotFoundByEntityKey (0x80060891): no row has those alternate-key values."""
    return DataverseApiError(
        404, "0x80060891", f"A record with the specified key values does not exist in {logical_name} entity"
    )


def duplicate_record(message: str = "A record with matching key values already exists.") -> DataverseApiError:
    """DuplicateRecord (0x80040237), 412: ``If-None-Match: *`` on an existing row, or a key taken twice."""
    return DataverseApiError(412, "0x80040237", message)


def concurrency_mismatch() -> DataverseApiError:
    """ConcurrencyVersionMismatch (0x80060882), 412: ``If-Match`` carried a stale ETag.

    See https://learn.microsoft.com/power-apps/developer/data-platform/webapi/perform-conditional-operations-using-web-api
    """
    return DataverseApiError(
        412,
        "0x80060882",
        "The version of the existing record doesn't match the RowVersion property provided.",
    )


def max_length_exceeded(logical_name: str, column: str, limit: int) -> DataverseApiError:
    """A string over its column's maximum length (0x80044331), worded as the batch documentation shows.

    See https://learn.microsoft.com/power-apps/developer/data-platform/webapi/execute-batch-operations-using-web-api#handling-errors
    """
    return DataverseApiError(
        400,
        "0x80044331",
        f"A validation error occurred.  The length of the '{column}' attribute of the '{logical_name}' "
        f"entity exceeded the maximum allowed length of '{limit}'.",
    )


def expired_delta_token() -> DataverseApiError:
    """ExpiredVersionStamp (0x80044352): the change-tracking token is unknown or too old; sync again in full.

    See https://learn.microsoft.com/power-apps/developer/data-platform/use-change-tracking-synchronize-data-external-systems
    """
    return DataverseApiError(
        400, "0x80044352", "Version stamp associated with the client has expired. Please perform a full sync."
    )


def resource_not_found(segment: str) -> DataverseApiError:
    """An unknown entity set (0x8006088a), as the Web API troubleshooting page shows it.

    See https://learn.microsoft.com/troubleshoot/power-platform/power-apps/dataverse/web-api-client-errors
    """
    return DataverseApiError(404, "0x8006088a", f"Resource not found for the segment '{segment}'.")


def bad_request(message: str) -> DataverseApiError:
    """A malformed request: a query option, key, payload or batch the twin cannot read (0x80060888)."""
    return DataverseApiError(400, "0x80060888", message)
