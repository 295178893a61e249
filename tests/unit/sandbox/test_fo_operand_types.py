"""Which operand types the F&O twin binds together in a $filter comparison, as Microsoft's OData library does
(TypePromotionUtils.PromoteOperandTypes, MetadataUtilsCommon.CanConvertPrimitiveTypeTo in OData/odata.net)."""

from __future__ import annotations

import pytest

from dualbus.sandbox.fo.operand_types import Operand, binds, incompatible_operands

ENUM = Operand("Microsoft.Dynamics.DataEntities.NoYes", enum=True)
NULL = Operand(None, literal=True)


@pytest.mark.parametrize(
    ("op", "left", "right"),
    [
        ("gt", Operand("Edm.Int32"), Operand("Edm.Int64")),
        ("eq", Operand("Edm.Int64"), Operand("Edm.Decimal")),
        ("lt", Operand("Edm.Int32"), Operand("Edm.Double")),
        ("ge", Operand("Edm.DateTimeOffset"), Operand("Edm.Date")),
        ("eq", Operand("Edm.Double"), Operand("Edm.Decimal", literal=True)),  # a constant may become Decimal
        ("eq", ENUM, ENUM),
        ("ne", NULL, ENUM),
        ("gt", Operand("Edm.String"), NULL),
        ("eq", NULL, NULL),
    ],
)
def test_types_the_library_promotes_to_one_bind(op: str, left: Operand, right: Operand) -> None:
    assert binds(op, left, right)


@pytest.mark.parametrize(
    ("op", "left", "right"),
    [
        ("eq", Operand("Edm.Decimal"), Operand("Edm.Double")),  # neither property converts to the other
        ("eq", Operand("Edm.Boolean"), Operand("Edm.Int32")),
        ("eq", ENUM, Operand("Edm.String")),
        ("eq", ENUM, Operand("Microsoft.Dynamics.DataEntities.CustVendorBlocked", enum=True)),
        ("gt", ENUM, NULL),  # null stands for an enum with eq and ne only
        ("eq", Operand("Edm.Guid"), Operand("Edm.String")),
    ],
)
def test_other_types_do_not_bind(op: str, left: Operand, right: Operand) -> None:
    assert not binds(op, left, right)


def test_the_message_names_the_left_operand_first_and_null_as_the_library_does() -> None:
    assert incompatible_operands("gt", ENUM, NULL) == (
        "A binary operator with incompatible types was detected. Found operand types "
        "'Microsoft.Dynamics.DataEntities.NoYes' and '<null>' for operator kind 'GreaterThan'."
    )
