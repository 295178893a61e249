"""Errors the Dataverse twin answers with, in the Web API's shape: ``{"error": {"code", "message"}}``.

::

    SandboxError
    └── DataverseApiError          an HTTP status plus Dataverse's hexadecimal error code and message

Status codes per error type: https://learn.microsoft.com/power-apps/developer/data-platform/webapi/compose-http-requests-handle-errors
Error codes: https://learn.microsoft.com/power-apps/developer/data-platform/reference/web-service-error-codes
(``data-service-error-codes.md`` at powerapps-docs 74a5b38e35910b9fb6de137716e00985222eda3c). The texts of
payload, query and key errors come from "Troubleshoot Dataverse Web API client errors" ([client-errors]):
https://github.com/MicrosoftDocs/SupportArticles-docs/blob/fef32b26dcc5df30570bd2162f5b1d967b95ca97/support/power-platform/power-apps/dataverse/web-api-client-errors.md
Value errors (type, choice, range) live in ``sandbox.dataverse.value_errors``.
"""

from __future__ import annotations

from typing import Any

from dualbus.sandbox.errors import SandboxError

__all__ = [
    "DataverseApiError",
    "bad_request",
    "change_tracking_not_enabled",
    "concurrency_mismatch",
    "duplicate_record",
    "expired_delta_token",
    "invalid_key",
    "invalid_property",
    "key_not_found",
    "no_http_resource",
    "object_not_found",
    "read_only_column",
    "resource_not_found",
    "unaddressable_key_value",
    "undeclared_navigation",
    "unknown_query_property",
]

# "Error identified in Payload provided by the user for Entity": a payload the Web API cannot read.
PAYLOAD_ERROR = "0x80048d19"
_VALIDATING = "An error occurred while validating input parameters: "


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


def expired_delta_token() -> DataverseApiError:
    """ExpiredVersionStamp (0x80044352): the change-tracking token is unknown or too old; sync again in full.

    See https://learn.microsoft.com/power-apps/developer/data-platform/use-change-tracking-synchronize-data-external-systems
    """
    return DataverseApiError(
        400, "0x80044352", "Version stamp associated with the client has expired. Please perform a full sync."
    )


def change_tracking_not_enabled(logical_name: str) -> DataverseApiError:
    """ChangeTrackingNotEnabledForEntity (0x80072491): the table's change tracking is not enabled.

    Name, code and message: ``data-service-error-codes.md`` (https://github.com/MicrosoftDocs/powerapps-docs/
    blob/74a5b38e35910b9fb6de137716e00985222eda3c/powerapps-docs/developer/data-platform/includes/
    data-service-error-codes.md), "Entity {0} isn't enabled for change tracking.", {0} filled with the
    table's logical name as the twin's other messages are. The status is not documented: the twin answers
    400, as it does the expired token.
    """
    return DataverseApiError(400, "0x80072491", f"Entity {logical_name} isn't enabled for change tracking.")


def resource_not_found(segment: str) -> DataverseApiError:
    """An unknown entity set (0x8006088a), as the Web API troubleshooting page shows it.

    See https://learn.microsoft.com/troubleshoot/power-platform/power-apps/dataverse/web-api-client-errors
    """
    return DataverseApiError(404, "0x8006088a", f"Resource not found for the segment '{segment}'.")


def bad_request(message: str) -> DataverseApiError:
    """A malformed request: a query option, key, payload or batch the twin cannot read (0x80060888)."""
    return DataverseApiError(400, "0x80060888", message)


def invalid_property(logical_name: str, name: str) -> DataverseApiError:
    """A body property the entity type lacks, as [client-errors] "Invalid property" shows it (400, 0x0)."""
    return DataverseApiError(
        400,
        "0x0",
        f"{_VALIDATING}Microsoft.Crm.CrmException: Invalid property '{name}' was found in entity "
        f"'Microsoft.Dynamics.CRM.{logical_name}'. ---> Microsoft.OData.ODataException: Does not support "
        "untyped value in non-open type.",
    )


def undeclared_navigation(entity_set: str, name: str) -> DataverseApiError:
    """``<name>@odata.bind`` for a navigation property the type lacks, as [client-errors] shows it (400)."""
    return DataverseApiError(
        400,
        PAYLOAD_ERROR,
        f"Error identified in Payload provided by the user for Entity :'{entity_set}'  ---->  "
        f"InnerException : Microsoft.OData.ODataException: An undeclared property '{name}' which only has "
        "property annotations in the payload but no property value was found in the payload. In OData, only "
        "declared navigation properties and declared named streams can be represented as properties without "
        "values.",
    )


def unknown_query_property(logical_name: str, name: str) -> DataverseApiError:
    """A query option naming a property the type lacks, as [client-errors] shows it for ``$select``."""
    return DataverseApiError(
        400,
        "0x0",
        f"Could not find a property named '{name}' on type 'Microsoft.Dynamics.CRM.{logical_name}'.",
    )


def invalid_key(logical_name: str) -> DataverseApiError:
    """A key segment that is neither the primary key nor an alternate key, worded as documented.

    Text: use-alternate-key-reference-record.md, "Exceptions when using alternate keys with the Web API"
    (https://github.com/MicrosoftDocs/powerapps-docs/blob/e40bbeb49bf84637609038b88caab9082ef6acd6/
    powerapps-docs/developer/data-platform/use-alternate-key-reference-record.md). Status and code are not
    documented: the twin answers 400 with 0x0, as the OData library's other URI errors in [client-errors] do.
    """
    resource = f"'Microsoft.Dynamics.CRM.{logical_name}'"
    return DataverseApiError(
        400,
        "0x0",
        f"The key in the request URI is not valid for resource {resource}. Ensure that the names and number "
        f"of key properties match the declared or alternate key properties for the resource {resource}.",
    )


def unaddressable_key_value(logical_name: str, column: str, value: str, char: str) -> DataverseApiError:
    """A key segment whose text value holds a character by which the Web API cannot address a row.

    Documented only as "retrieve (``GET``), update, or upsert (``PATCH``) actions don't work"
    (``keys.UNADDRESSABLE``). For ``/`` (sent encoded, ``new_name='alex%2F3'``), a Dataverse organisation's
    answer is public: 400, ``0x8006088a``, "Bad Request - Error in query syntax."
    (https://github.com/OData/odata.net/issues/1708); for the other characters neither status, code nor
    text is, so the twin refuses with 400 and its own words.
    """
    if char == "/":
        return DataverseApiError(400, "0x8006088a", "Bad Request - Error in query syntax.")
    return bad_request(
        f"The value {value!r} of the key column '{column}' of the '{logical_name}' entity contains {char!r}: "
        "a row cannot be retrieved, updated or upserted by such an alternate key."
    )


def read_only_column(logical_name: str, name: str) -> DataverseApiError:
    """A write to a column the reference lists as read-only (not valid for create or update).

    Neither status, code nor text is documented for the Web API; the twin refuses with 400 and its own words
    rather than drop the value silently, so that a map writing a computed column fails in tests.
    """
    return bad_request(
        f"The '{name}' attribute of the '{logical_name}' entity is read-only: it is not valid for create or "
        "update."
    )


def no_http_resource(url: str) -> DataverseApiError:
    """A function called with the wrong method (``POST …/WhoAmI``), as [client-errors] shows it (404)."""
    return DataverseApiError(404, "", f"No HTTP resource was found that matches the request URI '{url}'.")
