"""Literals bound to F&O's model: a value compared with a field, or given for a key, is of the field's type.

F&O's OData service binds a query to its metadata, as Microsoft's OData library does. An enum field takes an
enum literal of its own type, ``Microsoft.Dynamics.DataEntities.<Enum>'<Member>'`` (F&O's OData
documentation, "Using enums":
https://github.com/MicrosoftDocs/dynamics-365-unified-operations-public/blob/2bb90a0ca66952ed09ec1a1917190d7f105d1e2d/articles/fin-ops-core/dev-itpro/data-entities/odata.md).
Later versions of the library also read a member's name given as text
(https://github.com/OData/odata.net/pull/980); F&O documents the typed form alone, so the twin takes that
alone, and dualbus sends it, which every version reads. Which types a ``$filter`` comparison binds together,
and the library's message for those it refuses, are in ``operand_types``. A key path's values are literals
of the same grammar (OData 4.0 ABNF: ``keyPropertyValue = primitiveLiteral``).
"""

from __future__ import annotations

from dualbus.d365 import FoEntity, FoField
from dualbus.sandbox.fo.errors import BadRequestError

__all__ = ["check_key_literal", "check_member", "field_of", "literal_type"]

_NUMBERS = frozenset({"Edm.Int32", "Edm.Int64", "Edm.Decimal", "Edm.Double"})
_INSTANTS = frozenset({"Edm.DateTimeOffset", "Edm.Date"})


def check_key_literal(entity: FoEntity, name: str, token: tuple[str, str]) -> None:
    """Refuse a key path's value that is not a literal of the key field's type."""
    field = field_of(entity, name)
    given = literal_type(token)
    wanted = field.qualified_type if field is not None else None
    if wanted is not None and given is not None and not _fits(wanted, given):
        raise BadRequestError(f"The key value {token[1]} for {name} is not a literal of its type '{wanted}'.")
    if field is not None:
        check_member(entity, field, token)


def check_member(entity: FoEntity, field: FoField, token: tuple[str, str]) -> None:
    """Refuse an enum literal naming no member of its enum, with the library's message (quoted from it in
    https://github.com/OData/WebApi/issues/1971)."""
    kind, raw = token
    if field.enum is None or kind != "string" or raw.startswith("'"):
        return
    member = raw[raw.index("'") + 1 : -1]
    if member not in entity.enums[field.enum]:
        raise BadRequestError(f"The string '{raw}' is not a valid enumeration type constant.")


def field_of(entity: FoEntity, name: str) -> FoField | None:
    """The field called ``name``, or None."""
    # The twin's entities hold the extension fields already (sandbox/fo/entities.py); key names match
    # without regard to case, as the twin's keys do.
    folded = name.casefold()
    return next((field for key, field in entity.fields.items() if key.casefold() == folded), None)


def literal_type(token: tuple[str, str]) -> str | None:
    """The EDM type a literal token denotes; None for null, which any type takes."""
    kind, raw = token
    match kind:
        case "string":
            return "Edm.String" if raw.startswith("'") else raw[: raw.index("'")]
        case "guid":
            return "Edm.Guid"
        case "datetime":
            return "Edm.DateTimeOffset"
        case "number":
            return "Edm.Int32" if raw.lstrip("-").isdigit() else "Edm.Decimal"
        case "name" if raw.lower() in {"true", "false"}:
            return "Edm.Boolean"
    return None


def _fits(wanted: str, given: str) -> bool:
    if wanted in _NUMBERS:
        return given in _NUMBERS
    if wanted in _INSTANTS:
        return given in _INSTANTS
    return wanted == given
