"""Whether a ``$filter`` comparison's two operands have types F&O's OData library binds together.

F&O binds ``$filter`` to its model with Microsoft's OData library (Microsoft.OData.Core). Each comparison goes
through ``BinaryOperatorBinder.PromoteOperandTypes``, which refuses operands ``TypePromotionUtils
.PromoteOperandTypes`` cannot promote to one type with ``MetadataBinder_IncompatibleOperandsError``, naming
the left operand's type, then the right's (``<null>`` for null), then the operator kind. Sources, in
OData/odata.net at 7.4.0 (0fef8e29a3a3182dc0d0774fbfc79d1f53160f5e), the release before
https://github.com/OData/odata.net/pull/980 let an enum be compared with text (the twin takes F&O's
documented typed enum literals alone, see ``literals``):
src/Microsoft.OData.Core/UriParser/Binders/BinaryOperatorBinder.cs (the message's arguments),
src/Microsoft.OData.Core/UriParser/TypePromotionUtils.cs (``PromoteOperandTypes``, the relational
signatures), src/Microsoft.OData.Core/Metadata/MetadataUtilsCommon.cs (``CanConvertPrimitiveTypeTo``).
The rules, for the types F&O's entities use (``d365.FoType``), both operands properties or not:

- null against null binds; null against an enum binds with eq and ne only; null against a primitive binds.
- An enum binds with an enum of the same qualified name only, and with no primitive type. Later releases
  differ for an enum against a text property with eq and ne alone: 7.5 promotes the text to the enum,
  then refuses it with "Expression of type 'Edm.String' cannot be converted to type '<enum>'."
  (``MetadataBindingUtils.ConvertToTypeIfNeeded``), and 7.6 on converts it (``TypePromotionUtils
  .CanConvertTo``, from https://github.com/OData/odata.net/commit/9c75b9fa55a6eacfbafb341831e40869d065a909).
  The twin keeps 7.4's refusal, as it keeps refusing an enum's member given as text.
- Two primitives bind when one relational signature (one type for both operands) takes both: each type
  converts to itself, Edm.Int32 also to Edm.Int64, Edm.Double and Edm.Decimal, Edm.Int64 to Edm.Double and
  Edm.Decimal, Edm.Date to Edm.DateTimeOffset. So Int32, Int64 and Decimal properties compare with one
  another, Edm.Decimal and Edm.Double properties do not, text only with text, a GUID only with a GUID.
- A number literal binds with every numeric type: the library lets a constant number promote to
  Edm.Decimal as well (``TryGetConstantNodePrimitiveLDMF``), and the twin, which reads no type suffixes,
  types a number coarsely (Int32, or Decimal with a point) where the library picks the narrowest type
  that holds it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Operand", "binds", "incompatible_operands"]

# The library's BinaryOperatorKind names of the comparison operators.
_OPERATOR_KINDS = {
    "eq": "Equal",
    "ne": "NotEqual",
    "gt": "GreaterThan",
    "ge": "GreaterThanOrEqual",
    "lt": "LessThan",
    "le": "LessThanOrEqual",
}
_EQUALITY = frozenset({"eq", "ne"})
_NUMBERS = frozenset({"Edm.Int32", "Edm.Int64", "Edm.Decimal", "Edm.Double"})
# MetadataUtilsCommon.CanConvertPrimitiveTypeTo for a property's type (Edm.Single, which no F&O field has,
# left out); any other type converts to itself alone.
_CONVERTS_TO = {
    "Edm.Int32": frozenset({"Edm.Int32", "Edm.Int64", "Edm.Double", "Edm.Decimal"}),
    "Edm.Int64": frozenset({"Edm.Int64", "Edm.Double", "Edm.Decimal"}),
    "Edm.Date": frozenset({"Edm.Date", "Edm.DateTimeOffset"}),
}


@dataclass(frozen=True, slots=True)
class Operand:
    """One side of a comparison: its EDM type (None for null), whether that is an enum, and whether it is a
    literal (a constant promotes more freely than a property)."""

    type: str | None
    enum: bool = False
    literal: bool = False


def binds(op: str, left: Operand, right: Operand) -> bool:
    """Whether the library promotes ``left`` and ``right`` to one type for the comparison ``op``."""
    if left.type is None and right.type is None:
        return True
    if op in _EQUALITY and (left.type is None or right.type is None) and (left.enum or right.enum):
        return True
    if left.enum or right.enum:
        return left.enum and right.enum and left.type == right.type
    if left.type is None or right.type is None:
        return True  # null promotes to any primitive type, all of which are nullable in a signature
    return bool(_targets(left) & _targets(right))


def incompatible_operands(op: str, left: Operand, right: Operand) -> str:
    """The library's message for operands that do not bind, left's type first."""
    # MetadataBinder_IncompatibleOperandsError, OData/odata.net src/Microsoft.OData.Core/SRResources.resx
    # (src/Microsoft.OData.Core/Microsoft.OData.Core.txt before 8.3, same text), filled in by
    # src/Microsoft.OData.Core/UriParser/Binders/BinaryOperatorBinder.cs as (left, right, operator kind).
    return (
        "A binary operator with incompatible types was detected. Found operand types "
        f"'{left.type or '<null>'}' and '{right.type or '<null>'}' "
        f"for operator kind '{_OPERATOR_KINDS.get(op, op)}'."
    )


def _targets(operand: Operand) -> frozenset[str]:
    """The types of the relational signatures ``operand`` converts to."""
    kind = operand.type or ""
    if operand.literal and kind in _NUMBERS:
        return _NUMBERS
    return _CONVERTS_TO.get(kind, frozenset({kind}))
