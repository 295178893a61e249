"""Dataverse tables as the table reference describes them, and what a value of each column may be.

Column types and limits follow the table reference (``powerapps-docs/developer/data-platform/reference/
entities``); a lookup is set through a single-valued navigation property with ``@odata.bind`` and reads back
as ``_<column>_value``: https://learn.microsoft.com/power-apps/developer/data-platform/webapi/
associate-disassociate-entities-using-web-api
"""

from __future__ import annotations

import math
from typing import Literal, NamedTuple, Self

from pydantic import Field, model_validator

from dualbus.d365._common import Entry, Name, Schema

__all__ = ["DvColumn", "DvKey", "DvTable", "Problem", "lookup_value_column"]

DvType = Literal[
    "String",
    "Memo",
    "Integer",
    "BigInt",
    "Decimal",
    "Double",
    "Money",
    "Boolean",
    "Picklist",
    "State",
    "Status",
    "DateTime",
    "Lookup",
    "Customer",
    "Owner",
    "Uniqueidentifier",
    "EntityName",
]
_LOOKUPS = frozenset({"Lookup", "Customer", "Owner"})
_CHOICES = frozenset({"Picklist", "State", "Status"})
_NUMBERS = frozenset({"Integer", "BigInt", "Decimal", "Double", "Money"})
_TEXT = frozenset({"String", "Memo", "EntityName", "DateTime", "Uniqueidentifier"})
# The platform's own bounds where a column states none (Integer and BigInt are 32- and 64-bit).
_DEFAULT_RANGES = {"Integer": (-(2**31), 2**31 - 1), "BigInt": (-(2**63), 2**63 - 1)}


class Problem(NamedTuple):
    """Why a value cannot be written: its kind (for the error a service answers) and a readable detail."""

    kind: Literal["unknown", "type", "length", "option", "range"]
    column: str
    detail: str


def lookup_value_column(column: str) -> str:
    """The read-only property a lookup's id shows up in when read, e.g. ``_msdyn_company_value``."""
    return f"_{column}_value"


class DvColumn(Entry):
    """One column of a table."""

    type: DvType
    max_length: int | None = Field(default=None, gt=0)
    # int first: a BigInt bound such as 9223372036854775807 would lose its last digits as a float.
    min: int | float | None = None
    max: int | float | None = None
    precision: int | None = Field(default=None, ge=0)
    options: tuple[int, ...] = ()
    targets: dict[Name, Name] = Field(default_factory=dict)
    required: bool = False
    read_only: bool = False

    @model_validator(mode="after")
    def _check(self) -> Self:
        if (self.type in _LOOKUPS) != bool(self.targets) and self.type != "Owner":
            raise ValueError("a lookup names its navigation properties in 'targets', and only a lookup does")
        if self.options and self.type not in _CHOICES:
            raise ValueError("options belong to Picklist, State and Status columns")
        if self.max_length is not None and self.type not in {"String", "Memo"}:
            raise ValueError("max_length applies to String and Memo columns")
        return self

    @property
    def is_lookup(self) -> bool:
        """Whether the column references another row (written with ``@odata.bind``)."""
        return self.type in _LOOKUPS


class DvKey(Entry):
    """An alternate key: columns whose values together identify one row."""

    name: str = ""
    columns: tuple[Name, ...] = Field(min_length=1)


class DvTable(Schema):
    """One Dataverse table: its names, primary id, columns and alternate keys."""

    entity_set: Name
    logical_name: Name
    primary_id: Name
    primary_name: Name | None = None
    columns: dict[Name, DvColumn] = Field(min_length=1)
    alternate_keys: tuple[DvKey, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> Self:
        self.check_sources(dict(self.columns))
        for key in self.alternate_keys:
            if key.source is not None and key.source not in self.sources:
                raise ValueError(f"alternate key {key.columns}: unknown source {key.source!r}")
            unknown = [c for c in key.columns if c not in self.columns]
            if unknown:
                raise ValueError(f"alternate key {key.columns}: unknown column(s) {unknown}")
        return self

    @property
    def qualified_type(self) -> str:
        """The entity type's full name in the Web API's ``$metadata``."""
        return f"Microsoft.Dynamics.CRM.{self.logical_name}"

    def navigation(self, name: str) -> tuple[str, str] | None:
        """The lookup column and target entity set of a single-valued navigation property, or None."""
        for column_name, column in self.columns.items():
            if name in column.targets:
                return column_name, column.targets[name]
        return None

    def key_named_by(self, columns: frozenset[str]) -> DvKey | None:
        """The alternate key made of exactly these columns, or None."""
        return next((k for k in self.alternate_keys if frozenset(k.columns) == columns), None)

    def problem(self, name: str, value: object) -> Problem | None:
        """Why ``value`` cannot be written to column ``name`` (not a lookup), or None when it can."""
        column = self.columns.get(name)
        if column is None:
            return Problem("unknown", name, f"{self.logical_name} has no column {name!r}")
        if column.is_lookup or value is None:
            return None
        return _value_problem(name, column, value)


def _value_problem(name: str, column: DvColumn, value: object) -> Problem | None:
    kind = column.type
    if kind in _TEXT:
        return _text_problem(name, column, value)
    if kind == "Boolean":
        return None if isinstance(value, bool) else _wrong_type(name, column, value)
    if kind in _CHOICES:
        return _choice_problem(name, column, value)
    if kind in _NUMBERS:
        return _number_problem(name, column, value)
    return None


def _wrong_type(name: str, column: DvColumn, value: object) -> Problem:
    return Problem("type", name, f"{value!r} is not a valid {column.type} value")


def _text_problem(name: str, column: DvColumn, value: object) -> Problem | None:
    if not isinstance(value, str):
        return _wrong_type(name, column, value)
    limit = column.max_length
    return Problem("length", name, str(limit)) if limit is not None and len(value) > limit else None


def _choice_problem(name: str, column: DvColumn, value: object) -> Problem | None:
    if not isinstance(value, int) or isinstance(value, bool):
        return _wrong_type(name, column, value)
    if column.options and value not in column.options:
        return Problem("option", name, f"{value} is not one of {list(column.options)}")
    return None


def _number_problem(name: str, column: DvColumn, value: object) -> Problem | None:
    integral = column.type in _DEFAULT_RANGES
    if isinstance(value, bool) or not isinstance(value, int if integral else int | float):
        return _wrong_type(name, column, value)
    if isinstance(value, float) and not math.isfinite(value):
        return _wrong_type(name, column, value)
    default_low, default_high = _DEFAULT_RANGES.get(column.type, (None, None))
    low = column.min if column.min is not None else default_low
    high = column.max if column.max is not None else default_high
    if (low is not None and value < low) or (high is not None and value > high):
        return Problem("range", name, f"{value} is outside [{low}, {high}]")
    return None
