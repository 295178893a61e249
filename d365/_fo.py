"""F&O data entities as their ``$metadata`` describes them, and what a value of each field may be.

OData JSON writes F&O enums by member name (``"OnHoldStatus": "No"``) and numbers as JSON numbers; see
https://learn.microsoft.com/dynamics365/fin-ops-core/dev-itpro/data-entities/odata
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Literal, Self

from pydantic import Field, model_validator

from dualbus.d365._common import Entry, Name, Schema, Strict

__all__ = ["FO_NAMESPACE", "FoEntity", "FoField", "FoRelation"]

FoType = Literal[
    "Edm.String",
    "Edm.Int32",
    "Edm.Int64",
    "Edm.Decimal",
    "Edm.Double",
    "Edm.Boolean",
    "Edm.DateTimeOffset",
    "Edm.Date",
    "Edm.Guid",
    "enum",
]
_INT_RANGES = {"Edm.Int32": (-(2**31), 2**31 - 1), "Edm.Int64": (-(2**63), 2**63 - 1)}
_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# The OData library's wording (ValidationUtils_PropertyDoesNotExistOnType), which F&O's OData stack quotes:
# https://github.com/OData/odata.net/blob/015837a4c188edd4d3f81550bb432c6527745b54/src/Microsoft.OData.Core/Microsoft.OData.Core.txt
_PROPERTY_DOES_NOT_EXIST = (
    "The property '{0}' does not exist on type '{1}'. "
    "Make sure to only use property names that are defined by the type or mark the type as open type."
)


# What an F&O field holds when it holds nothing. X++ has no null: "A field in Microsoft Dynamics AX always has
# a type and a value", and one value of each type is treated as null: an empty string, 0, 0.0, the date
# 1900-01-01, and for a utcDateTime any value dated 1900-01-01 (DateTimeUtil::minValue() is
# 1900-01-01T00:00:00). Source: "Null Values for Data Types" (AX 2012, the X++ runtime F&O inherits),
# https://learn.microsoft.com/en-us/dynamicsax-2012/developer/null-values-for-data-types; F&O's own X++
# reference says of a record inserted with only its account number set: "Other fields in the record will
# be blank."
# https://github.com/MicrosoftDocs/dynamics-365-unified-operations-public/blob/fbf23c251543149bd54646dd62bdf9c3b26b57a8/articles/fin-ops-core/dev-itpro/dev-ref/xpp-data-query.md
# An enum's is its element of value 0, known here only for the enums below; GUIDs are left out (the table
# names no null GUID).
_EMPTY_VALUES: dict[str, str | int | bool] = {
    "Edm.String": "",
    "Edm.Int32": 0,
    "Edm.Int64": 0,
    "Edm.Decimal": 0,
    "Edm.Double": 0,
    "Edm.Boolean": False,
    "Edm.Date": "1900-01-01",
    "Edm.DateTimeOffset": "1900-01-01T00:00:00Z",
}


# The element of value 0 of the enums whose values are published, as F&O's $metadata lists them
# (<Member Name="No" Value="0">); the entity files name members only.
# https://github.com/ntrtd/d365-agent/blob/67912944adf2a39437b4c3d556b9eaeab46bba7e/src/mcp_hub/src/agents/finance_accounting/temp_shortlist_trimmed.xml
_ENUM_ZERO: dict[str, str] = {"NoYes": "No", "CustVendorBlocked": "No"}


# The namespace of F&O's data entity types and enums in ``$metadata`` (data-entities/odata.md, "Using enums").
FO_NAMESPACE = "Microsoft.Dynamics.DataEntities"


class FoField(Entry):
    """One property of a data entity."""

    type: FoType
    enum: Name | None = None
    max_length: int | None = Field(default=None, gt=0)
    nullable: bool = True
    label: str = ""

    @model_validator(mode="after")
    def _check(self) -> Self:
        if (self.type == "enum") != (self.enum is not None):
            raise ValueError("an enum field names its enum, and only an enum field does")
        if self.max_length is not None and self.type != "Edm.String":
            raise ValueError("max_length applies to Edm.String fields only")
        return self

    @property
    def qualified_type(self) -> str:
        """The field's type as ``$metadata`` and OData's messages name it: an enum by its qualified name."""
        return f"{FO_NAMESPACE}.{self.enum}" if self.enum is not None else self.type

    @property
    def empty_value(self) -> str | int | bool | None:
        """What the field holds when it holds nothing (X++ has no null); None where that is not known."""
        if self.enum is not None:
            return _ENUM_ZERO.get(self.enum)
        return _EMPTY_VALUES.get(self.type)


class FoRelation(Strict):
    """A foreign key F&O checks on write: these fields must name an existing row of ``entity_set``."""

    fields: dict[Name, Name] = Field(min_length=1)
    entity_set: Name
    source: str | None = None


class FoEntity(Schema):
    """One OData data entity: names, keys, fields, enums and the relations F&O validates."""

    entity_set: Name
    entity_type: Name
    aot_name: Name
    label: str = ""
    company_specific: bool
    keys: tuple[Name, ...] = Field(min_length=1)
    fields: dict[Name, FoField] = Field(min_length=1)
    enums: dict[Name, tuple[str, ...]] = Field(default_factory=dict)
    relations: tuple[FoRelation, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> Self:
        self.check_sources(dict(self.fields))
        for relation in self.relations:
            if relation.source is not None and relation.source not in self.sources:
                raise ValueError(f"relation to {relation.entity_set}: unknown source {relation.source!r}")
        missing = [key for key in self.keys if key not in self.fields]
        if missing:
            raise ValueError(f"key field(s) {missing} are not among the fields")
        if self.company_specific != (self.keys[0] == "dataAreaId"):
            raise ValueError("a company-specific entity has dataAreaId as its first key, and only it")
        for name, field in self.fields.items():
            if field.enum is not None and field.enum not in self.enums:
                raise ValueError(f"{name}: enum {field.enum!r} is not defined in 'enums'")
        for relation in self.relations:
            unknown = [name for name in relation.fields if name not in self.fields]
            if unknown:
                raise ValueError(f"relation to {relation.entity_set}: unknown field(s) {unknown}")
        return self

    @property
    def event_entity_name(self) -> str:
        """The logical name data events and virtual tables give the entity: ``mserp_`` + the AOT name."""
        return f"mserp_{self.aot_name.lower()}"

    def field_named(self, name: str) -> FoField | None:
        """The field called ``name`` (case-sensitive, as OData is), or None."""
        return self.fields.get(name)

    def problem(self, name: str, value: object) -> str | None:
        """Why ``value`` cannot be written to field ``name``, or None when it can."""
        field = self.fields.get(name)
        if field is None:
            return _PROPERTY_DOES_NOT_EXIST.format(name, self.qualified_type)
        if value is None:
            return None if field.nullable or field.type == "Edm.String" else f"'{name}' cannot be null."
        return _value_problem(self, name, field, value)

    @property
    def qualified_type(self) -> str:
        """The entity type's full name in ``$metadata``."""
        return f"{FO_NAMESPACE}.{self.entity_type}"


def _value_problem(entity: FoEntity, name: str, field: FoField, value: object) -> str | None:
    kind = field.type
    if kind == "enum":
        members = entity.enums[field.enum or ""]
        ok = isinstance(value, str) and value in members
        return None if ok else f"'{value}' is not a member of enum {field.enum} for '{name}'."
    if kind == "Edm.String":
        if not isinstance(value, str):
            return f"Cannot convert {value!r} to Edm.String for '{name}'."
        limit = field.max_length
        too_long = limit is not None and len(value) > limit
        return f"'{name}' is longer than {limit} characters." if too_long else None
    if kind == "Edm.Boolean":
        return None if isinstance(value, bool) else f"Cannot convert {value!r} to Edm.Boolean for '{name}'."
    return _scalar_problem(name, kind, value)


def _scalar_problem(name: str, kind: str, value: object) -> str | None:
    if kind in _INT_RANGES:
        low, high = _INT_RANGES[kind]
        ok = isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
        return None if ok else f"Cannot convert {value!r} to {kind} for '{name}'."
    if kind in {"Edm.Decimal", "Edm.Double"}:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return None if ok else f"Cannot convert {value!r} to {kind} for '{name}'."
    if kind == "Edm.Guid":
        ok = isinstance(value, str) and _GUID.match(value) is not None
        return None if ok else f"Cannot convert {value!r} to Edm.Guid for '{name}'."
    check = _is_date_time_offset if kind == "Edm.DateTimeOffset" else _is_date
    ok = isinstance(value, str) and check(value)
    return None if ok else f"Cannot convert {value!r} to {kind} for '{name}'."


def _is_date_time_offset(text: str) -> bool:
    # An Edm.DateTimeOffset carries a date, a time and an offset ("2024-01-31T12:00:00Z"); Python's parser
    # alone would also take a bare date or a local time.
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return False
    return "T" in text.upper() and parsed.tzinfo is not None


def _is_date(text: str) -> bool:
    # Edm.Date is YYYY-MM-DD only; Python 3.11 would also accept the basic form 20240131.
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return _DATE.match(text) is not None
