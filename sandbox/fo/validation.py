"""Checking a POST or PATCH body against the entity's schema before anything is written, as F&O's OData does.

F&O reads request bodies with the OData library (ODL), so a body it cannot read is refused in F&O's error
envelope (outer message "An error has occurred.", the reason in ``innererror``) with the library's wording:

- a property the entity type does not declare: ``ValidationUtils_PropertyDoesNotExistOnType``;
- null for a non-nullable property: ``ReaderValidationUtils_NullNamedValueForNonNullableType``;
- a value of the wrong JSON type, an enum member the enum lacks (OData JSON writes enums by member name), an
  Int32/Int64 out of range, a malformed date: ``ReaderValidationUtils_CannotConvertPrimitiveValue``.

Wording from https://github.com/OData/odata.net/blob/015837a4c188edd4d3f81550bb432c6527745b54/src/Microsoft.OData.Core/Microsoft.OData.Core.txt
(public occurrences of the unknown-property text against real services:
https://github.com/OData/odata.net/issues/1009 and https://github.com/simple-odata-client/Simple.OData.Client/issues/673).
That F&O answers an unknown property with this text and HTTP 400 is an inference (F&O reads bodies with ODL,
which raises it; no public F&O response shows it), as are the status and inner type
``Microsoft.OData.ODataException`` of the other refusals and that the ODL release F&O ships words a failed
conversion this way (older releases say "Cannot convert a primitive value to the expected type '...'").
Strings are not converted into numbers, as ODL would for IEEE754Compatible payloads. ``@odata.*`` and other
instance or property annotations in a body are ignored, as ODL reads them beside the properties.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from dualbus.d365 import FoEntity
from dualbus.sandbox.fo.blanks import stored_value
from dualbus.sandbox.fo.errors import RefusedError

__all__ = ["ODATA_EXCEPTION", "WRITE_EXCEPTION", "clean_body"]

ODATA_EXCEPTION = "Microsoft.OData.ODataException"
# F&O's own write failure, as observed in a real response (see sandbox/fo/relations.py).
WRITE_EXCEPTION = "Microsoft.Dynamics.Platform.Integration.Services.OData.AxODataWriteException"
_CANNOT_CONVERT = "Cannot convert the literal '{0}' to the expected type '{1}'."
_NULL_NOT_ALLOWED = (
    "A null value was found for the property named '{0}', which has the expected type '{1}[Nullable=False]'. "
    "The expected type '{1}[Nullable=False]' does not allow null values."
)

Row = dict[str, Any]


def clean_body(entity: FoEntity, body: Mapping[str, Any]) -> Row:
    """The properties ``body`` writes, annotations left out, a null as the field's empty value (F&O holds
    no null, see blanks.py); RefusedError for the first bad one."""
    row: Row = {}
    for name, value in body.items():
        if "@" in name:
            continue
        _check(entity, name, value)
        row[name] = stored_value(entity, name, value)
    return row


def _check(entity: FoEntity, name: str, value: object) -> None:
    problem = entity.problem(name, value)
    if problem is None:
        return
    field = entity.field_named(name)
    if field is None:
        # FoEntity words an unknown property exactly as ODL does.
        raise RefusedError(problem, inner_type=ODATA_EXCEPTION)
    if value is None:
        raise RefusedError(_NULL_NOT_ALLOWED.format(name, field.qualified_type), inner_type=ODATA_EXCEPTION)
    if field.type == "Edm.String" and isinstance(value, str):
        # Too long for a declared MaxLength: ODL does not check it; F&O's answer is unconfirmed.
        raise RefusedError(problem, inner_type=WRITE_EXCEPTION)
    raise RefusedError(
        _CANNOT_CONVERT.format(_literal(value), field.qualified_type), inner_type=ODATA_EXCEPTION
    )


def _literal(value: object) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()
