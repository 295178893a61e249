"""F&O OData literals of a field's type, and the ``$filter`` that names one row by its key fields.

``$filter`` takes eq/ne/and/or (``in`` is not supported), and an enum literal reads
``Microsoft.Dynamics.DataEntities.<Enum>'<Member>'``:
https://github.com/MicrosoftDocs/dynamics-365-unified-operations-public/blob/2bb90a0ca66952ed09ec1a1917190d7f105d1e2d/articles/fin-ops-core/dev-itpro/data-entities/odata.md
A row is named with ``$filter`` on its key fields rather than a key path where a missing row must not be an
error: a collection answers an empty ``value``, where a key path answers 404.
"""

from __future__ import annotations

from collections.abc import Mapping

from dualbus.d365._fo import FoEntity, FoField
from dualbus.d365._prerequisites import fo_deployed_fields

__all__ = ["fo_key_filter", "fo_key_literals", "fo_literal"]

_BARE = frozenset({"Edm.Int32", "Edm.Int64", "Edm.Decimal", "Edm.Double", "Edm.DateTimeOffset", "Edm.Date"})


def fo_literal(field: FoField, value: object) -> str:
    """``value`` as an OData literal of the field's type (``'text'``, ``5``, an enum literal, ...)."""
    if value is None:
        return "null"
    if field.enum is not None:
        return f"{field.qualified_type}{_quoted(value)}"
    if field.type == "Edm.Boolean":
        return "true" if value else "false"
    if field.type in _BARE or field.type == "Edm.Guid":
        return str(value)
    return _quoted(value)


def _quoted(value: object) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def fo_key_literals(entity: FoEntity, values: Mapping[str, object]) -> dict[str, str]:
    """Each field's value as a literal of its type: what a key path's ``(A='x',B=5)`` or a ``$filter`` says.

    A key path takes the same literals as ``$filter``: in the OData 4.0 ABNF a ``keyPropertyValue`` is a
    ``primitiveLiteral``, whose ``enum`` is ``qualifiedEnumTypeName SQUOTE enumValue SQUOTE`` (the type
    name may be left out only from OData 4.01 on, which F&O does not claim) and whose date-times are bare:
    https://docs.oasis-open.org/odata/odata/v4.0/os/abnf/odata-abnf-construction-rules.txt. OData 4.01 says
    so too: "OData clients that want to operate across OData 4.0 and OData 4.01 services should always
    include the prefix for duration and enumeration types" (part 2, "Primitive Literals").
    """
    fields = fo_deployed_fields(entity)
    return {name: fo_literal(fields[name], value) for name, value in values.items()}


def fo_key_filter(entity: FoEntity, key: Mapping[str, object]) -> str:
    """``A eq 'x' and B eq 5`` for the given field values of one row."""
    return " and ".join(f"{name} eq {literal}" for name, literal in fo_key_literals(entity, key).items())
