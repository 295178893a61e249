"""A ``$filter`` comparison bound to F&O's model, as F&O's OData library binds it: each operand typed, then
the two checked against each other, whichever side a property or a literal is on.

A property takes its field's type (an enum by its qualified name, as ``$metadata`` says), a literal the type
its text denotes. On top of the library's rules (``operand_types``), F&O compares an enum with eq and ne
only: "The operations that enums support are eq and ne." (F&O's OData documentation, "Using enums":
https://github.com/MicrosoftDocs/dynamics-365-unified-operations-public/blob/2bb90a0ca66952ed09ec1a1917190d7f105d1e2d/articles/fin-ops-core/dev-itpro/data-entities/odata.md).
"""

from __future__ import annotations

from dualbus.d365 import FoEntity, FoField
from dualbus.sandbox.fo.errors import BadRequestError
from dualbus.sandbox.fo.literals import check_member, field_of, literal_type
from dualbus.sandbox.fo.operand_types import Operand, binds, incompatible_operands

__all__ = ["check_comparison"]

_Token = tuple[str, str]
_ENUM_OPERATORS = frozenset({"eq", "ne"})
_KEYWORD_LITERALS = frozenset({"true", "false", "null"})


def check_comparison(entity: FoEntity, left: _Token, op: str, right: _Token) -> None:
    """Refuse the comparison ``left op right`` of ``entity``'s ``$filter`` when its operands' types do not
    bind together, or it compares an enum other than with eq and ne, or names no member of an enum."""
    fields = (_field(entity, left), _field(entity, right))
    if any(field is None and _is_property(token) for field, token in zip(fields, (left, right), strict=True)):
        return  # an unknown field is refused by name elsewhere
    for token, field in zip((left, right), fields, strict=True):
        if field is not None and field.enum is not None and op not in _ENUM_OPERATORS:
            raise BadRequestError(f"{token[1]} is an enum: F&O compares enums with eq and ne only, not {op}.")
    operands = (_operand(left, fields[0]), _operand(right, fields[1]))
    if not binds(op, *operands):
        raise BadRequestError(incompatible_operands(op, *operands))
    for field, other in ((fields[0], right), (fields[1], left)):
        if field is not None and not _is_property(other):
            check_member(entity, field, other)


def _field(entity: FoEntity, token: _Token) -> FoField | None:
    return field_of(entity, token[1]) if _is_property(token) else None


def _is_property(token: _Token) -> bool:
    kind, raw = token
    return kind == "name" and raw.lower() not in _KEYWORD_LITERALS


def _operand(token: _Token, field: FoField | None) -> Operand:
    if field is not None:
        return Operand(field.qualified_type, enum=field.enum is not None)
    kind, raw = token
    # An enum literal is Namespace.Type'Member'; plain text starts with its quote.
    return Operand(literal_type(token), enum=kind == "string" and not raw.startswith("'"), literal=True)
