"""What the Web API answers when a value does not fit its column: wrong JSON type, choice, range or length.

Codes and their texts: Dataverse error codes ([error-codes], https://github.com/MicrosoftDocs/powerapps-docs/
blob/74a5b38e35910b9fb6de137716e00985222eda3c/powerapps-docs/developer/data-platform/includes/
data-service-error-codes.md). No source shows the HTTP status of the choice and range errors; the twin answers
400, as the documented neighbouring validation errors (length, invalid property) are.
"""

from __future__ import annotations

import re
from datetime import datetime

import orjson

from dualbus.d365 import DvColumn, DvTable, Problem
from dualbus.sandbox.dataverse.errors import DataverseApiError

__all__ = ["check_value", "max_length_exceeded"]

# The property types of the $metadata document ("Primitive types used by Dataverse", web-api-properties.md at
# powerapps-docs b2fd89245749c68f80ed94904fec6d3e2f0e498c); its example shows a Money column as Edm.Decimal.
_EDM = {
    "String": "Edm.String",
    "Memo": "Edm.String",
    "EntityName": "Edm.String",
    "Integer": "Edm.Int32",
    "Picklist": "Edm.Int32",
    "State": "Edm.Int32",
    "Status": "Edm.Int32",
    "BigInt": "Edm.Int64",
    "Decimal": "Edm.Decimal",
    "Money": "Edm.Decimal",
    "Double": "Edm.Double",
    "Boolean": "Edm.Boolean",
    "DateTime": "Edm.DateTimeOffset",
    "Uniqueidentifier": "Edm.Guid",
}
_BITS = {"Edm.Int32": 31, "Edm.Int64": 63}
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# IntegerValueOutOfRange, DecimalValueOutOfRange and MoneySizeExceeded; Double and BigInt have no code of
# their own in [error-codes], so they get MinMaxValidationFailed.
_OUTSIDE = "A validation error occurred. {} provided is outside of the allowed values for this attribute."
_RANGE_ERRORS = {
    "Integer": ("0x8004432F", _OUTSIDE.format("An integer")),
    "Decimal": ("0x80044330", _OUTSIDE.format("A decimal value")),
    "Money": ("0x80040317", "Supplied value exceeded the MIN/MAX value of Money Type field."),
}
_MIN_MAX = ("0x80061004", "The value is out of range.")


def check_value(table: DvTable, name: str, column: DvColumn, value: object) -> None:
    """Raise the error the Web API answers when ``value`` cannot be written to column ``name``."""
    edm = _EDM.get(column.type)
    if value is None or edm is None:
        return
    if not _readable_as(edm, value):
        raise type_mismatch(value, edm)
    problem = table.problem(name, value)
    if problem is not None:
        raise _problem_error(table, column, problem, value)


def _readable_as(edm: str, value: object) -> bool:
    """Whether the OData reader can read the JSON value as ``edm`` at all (its own range included)."""
    if edm in _BITS:
        bits = _BITS[edm]
        return isinstance(value, int) and not isinstance(value, bool) and -(2**bits) <= value < 2**bits
    if edm == "Edm.Guid":
        return isinstance(value, str) and _GUID.match(value) is not None
    if edm == "Edm.DateTimeOffset":
        return isinstance(value, str) and _is_datetime(value)
    return True  # the other types: d365's Problem tells a wrong type


def _is_datetime(text: str) -> bool:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def _problem_error(table: DvTable, column: DvColumn, problem: Problem, value: object) -> DataverseApiError:
    if problem.kind == "length":
        return max_length_exceeded(table.logical_name, problem.column, int(problem.detail))
    if problem.kind == "option":
        return DataverseApiError(400, "0x8004431A", "The picklist value is out of the range.")
    if problem.kind == "range":
        code, message = _RANGE_ERRORS.get(column.type, _MIN_MAX)
        return DataverseApiError(400, code, message)
    return type_mismatch(value, _EDM.get(column.type, column.type))


def type_mismatch(value: object, edm: str) -> DataverseApiError:
    """A JSON value the OData reader cannot convert to the property's type (400, 0x0).

    Worded as real responses show it (https://github.com/mautic/mautic/issues/4467: "An error occurred
    while validating input parameters: Microsoft.OData.ODataException: Cannot convert the literal '0' to the
    expected type 'Edm.Boolean'."); no Microsoft page documents this error.
    """
    literal = value if isinstance(value, str) else orjson.dumps(value).decode()
    return DataverseApiError(
        400,
        "0x0",
        "An error occurred while validating input parameters: Microsoft.OData.ODataException: Cannot convert "
        f"the literal '{literal}' to the expected type '{edm}'.",
    )


def max_length_exceeded(logical_name: str, column: str, limit: int) -> DataverseApiError:
    """StringLengthTooLong (0x80044331), 400, worded as real responses show it.

    https://github.com/microsoft/coe-starter-kit/issues/5019 and https://github.com/microsoft/powerapps-tools/
    issues/403 ("A validation error occurred.  The length of the 'admin_sourcetype' attribute of the
    'admin_flowresource' entity exceeded the maximum allowed length of '1000'.", status 400).
    """
    return DataverseApiError(
        400,
        "0x80044331",
        f"A validation error occurred.  The length of the '{column}' attribute of the '{logical_name}' "
        f"entity exceeded the maximum allowed length of '{limit}'.",
    )
