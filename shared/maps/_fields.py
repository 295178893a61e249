"""The parts of a table map: directions, field maps, value maps, lookups and source filters.

Each model checks the rules it can see on its own; rules that need the whole map live in ``_table``.
A rule broken inside a validator is raised as a ``map_rule`` error whose ``path`` context says where, relative
to the model, so that the loader can report a full JSON path.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    model_validator,
)
from pydantic_core import PydanticCustomError

from dualbus.shared.errors import TransformError

__all__ = [
    "Condition",
    "Direction",
    "FieldMap",
    "FieldType",
    "LookupMap",
    "Scalar",
    "Side",
    "SourceFilter",
    "ValuePair",
    "rule_error",
    "scalar_key",
]

# Strict members keep JSON's own types: `true` stays a bool and never matches the option value 1.
Scalar = StrictBool | StrictInt | StrictFloat | StrictStr
Side = Literal["fo", "dataverse"]


def other_side(side: Side) -> Side:
    """The side a change from ``side`` is applied to (and the reverse)."""
    return "dataverse" if side == "fo" else "fo"


Name = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


def rule_error(path: str, message: str) -> PydanticCustomError:
    """A validation error for a broken map rule, located at ``path`` below the model that raised it."""
    return PydanticCustomError("map_rule", "{detail}", {"path": path, "detail": message})


def scalar_key(value: object) -> tuple[str, object]:
    """A comparison key that tells ``True`` from ``1`` and ``1`` from ``"1"`` but lets ``1`` equal ``1.0``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return (type(value).__name__, value)
    return ("number", value)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Direction(StrEnum):
    """Which way a map, field or lookup carries changes."""

    TWO_WAY = "two_way"
    FO_TO_DATAVERSE = "fo_to_dataverse"
    DATAVERSE_TO_FO = "dataverse_to_fo"

    def carries(self, target: Side) -> bool:
        """Whether changes flow towards ``target`` in this direction."""
        if self is Direction.TWO_WAY:
            return True
        return (self is Direction.FO_TO_DATAVERSE) == (target == "dataverse")

    def within(self, outer: Direction) -> bool:
        """Whether this direction fits inside a map that goes ``outer``."""
        return outer is Direction.TWO_WAY or self is outer


class FieldType(StrEnum):
    """The value type of a field that has no value map."""

    STRING = "string"
    INTEGER = "integer"
    DECIMAL = "decimal"
    BOOLEAN = "boolean"

    def accepts(self, value: object) -> bool:
        """Whether ``value`` (already known not to be None) has this type."""
        if self is FieldType.STRING:
            return isinstance(value, str)
        if self is FieldType.BOOLEAN:
            return isinstance(value, bool)
        if isinstance(value, bool):
            return False
        if self is FieldType.INTEGER:
            return isinstance(value, int)
        return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


class ValuePair(_Strict):
    """One entry of a value map: an F&O enum value and the Dataverse value it stands for."""

    fo: Scalar
    dataverse: Scalar


class FieldMap(_Strict):
    """How one column travels: names on both sides, direction, type or value map, defaults, a constant."""

    fo: Name | None = None
    dataverse: Name | None = None
    direction: Direction
    type: FieldType | None = None
    value_map: tuple[ValuePair, ...] | None = Field(default=None, min_length=1)
    constant: Scalar | None = None
    # F&O fields whose values, joined in order, make this Dataverse value (a key dual-write composes).
    compose: tuple[Name, ...] | None = Field(default=None, min_length=2)
    fo_default: Scalar | None = None
    dataverse_default: Scalar | None = None
    fo_max_length: int | None = Field(default=None, gt=0)
    dataverse_max_length: int | None = Field(default=None, gt=0)
    # The numbers each side can hold (from the schemas, see ``bind_schemas``); None: no bound known.
    fo_min: int | float | None = None
    fo_max: int | float | None = None
    dataverse_min: int | float | None = None
    dataverse_max: int | float | None = None
    # What the F&O field holds for "no value" (F&O holds no null: "" or 0), from the schema (see
    # ``bind_schemas``); a Dataverse null is written as this. None: not known (an enum whose values are not
    # published), a null goes as null.
    fo_empty: Scalar | None = None
    required: bool = False

    def name_on(self, side: Side) -> str | None:
        """The field's name on one side (None for the source-less side of a constant)."""
        return self.fo if side == "fo" else self.dataverse

    def default_for(self, side: Side) -> Scalar | None:
        """The value ``side`` receives when the other side has none."""
        return self.fo_default if side == "fo" else self.dataverse_default

    def max_length_on(self, side: Side) -> int | None:
        """The declared maximum string length on one side."""
        return self.fo_max_length if side == "fo" else self.dataverse_max_length

    def bounds_on(self, side: Side) -> tuple[int | float | None, int | float | None]:
        """The smallest and largest number ``side`` holds for this field (None where unbounded)."""
        return (self.fo_min, self.fo_max) if side == "fo" else (self.dataverse_min, self.dataverse_max)

    def no_value_on(self, side: Side) -> Scalar | None:
        """F&O's "no value" of this field (``fo_empty``) as ``side`` holds it: a value map's counterpart on
        Dataverse; None where it is not known."""
        if self.fo_empty is None or side == "fo" or self.value_map is None:
            return self.fo_empty
        return self.mapped(self.fo_empty, to="dataverse")

    def mapped(self, value: object, *, to: Side) -> Scalar | None:
        """The value map's counterpart on ``to`` of a value the other side holds; None when it has none
        (or the field has no value map)."""
        wanted = scalar_key(value)
        for pair in self.value_map or ():
            theirs, ours = (pair.fo, pair.dataverse) if to == "dataverse" else (pair.dataverse, pair.fo)
            if scalar_key(theirs) == wanted:
                return ours
        return None

    def label(self) -> str:
        """A readable name for errors: ``CustomerAccount/accountnumber``."""
        return "/".join(name for name in (self.fo, self.dataverse) if name)

    @model_validator(mode="after")
    def _check(self) -> FieldMap:
        if (self.type is None) == (self.value_map is None):
            raise rule_error("", "give exactly one of 'type' and 'value_map'")
        if self.constant is not None:
            self._check_constant()
        elif self.compose is not None:
            self._check_compose()
        elif self.fo is None or self.dataverse is None:
            raise rule_error("", "a field needs both an 'fo' and a 'dataverse' name unless it is a constant")
        if self.type is not FieldType.STRING and (self.fo_max_length or self.dataverse_max_length):
            raise rule_error("", "maximum lengths apply to string fields only")
        bounds = (*self.bounds_on("fo"), *self.bounds_on("dataverse"))
        if self.type not in {FieldType.INTEGER, FieldType.DECIMAL} and any(b is not None for b in bounds):
            raise rule_error("", "numeric bounds apply to integer and decimal fields only")
        if self.value_map is not None:
            self._check_value_map(self.value_map)
        self._check_defaults()
        return self

    def _check_constant(self) -> None:
        target: Side = "dataverse" if self.fo is None else "fo"
        if (self.fo is None) == (self.dataverse is None):
            raise rule_error("", "a constant names exactly one side: the side it is written to")
        if self.direction is Direction.TWO_WAY or not self.direction.carries(target):
            raise rule_error(".direction", f"a constant written to {target} must go one way, to {target}")
        if self.fo_default is not None or self.dataverse_default is not None:
            raise rule_error("", "a constant has no default: it always applies")
        if not self.accepts(self.constant, target):
            raise rule_error(".constant", f"constant {self.constant!r} does not fit the field's type")

    def _check_compose(self) -> None:
        if self.fo is not None or self.dataverse is None:
            raise rule_error("", "a composed field names its Dataverse column only (compose: F&O fields)")
        if self.direction is not Direction.FO_TO_DATAVERSE or self.type is not FieldType.STRING:
            raise rule_error(".compose", "a composed field is a string that goes fo_to_dataverse")

    def _check_value_map(self, pairs: tuple[ValuePair, ...]) -> None:
        for side in ("fo", "dataverse"):
            source = other_side(side)
            # To write side X we look values up by the other side, so those must be unique.
            if not self.direction.carries(side) or self.name_on(source) is None:
                continue
            seen: set[tuple[str, object]] = set()
            for index, pair in enumerate(pairs):
                value = pair.fo if source == "fo" else pair.dataverse
                if scalar_key(value) in seen:
                    raise rule_error(
                        f".value_map[{index}].{source}",
                        f"value map is not invertible: {source} value {value!r} appears twice, "
                        f"so a change to {side} is ambiguous",
                    )
                seen.add(scalar_key(value))

    def _check_defaults(self) -> None:
        for side in ("fo", "dataverse"):
            default = self.default_for(side)
            if default is not None and not self.accepts(default, side):
                raise rule_error(f".{side}_default", f"default {default!r} does not fit the field's type")

    def accepts(self, value: object, side: Side) -> bool:
        """Whether ``value`` is a valid non-null value of this field on ``side``."""
        if self.value_map is not None:
            allowed = {scalar_key(p.fo if side == "fo" else p.dataverse) for p in self.value_map}
            return scalar_key(value) in allowed
        return self.type is not None and self.type.accepts(value)


class LookupMap(_Strict):
    """A Dataverse lookup bound by the target's alternate key, fed by plain F&O values."""

    dataverse: Name
    target_table: Name
    key: dict[Name, Name] = Field(min_length=1)
    direction: Direction
    required: bool = False

    def label(self) -> str:
        """A readable name for errors: the navigation property."""
        return self.dataverse


class Condition(_Strict):
    """One test of a source filter: a field compared with a value or a list of values."""

    field: Name
    op: Literal["eq", "ne", "in", "not_in"]
    value: Scalar | tuple[Scalar, ...] | None

    @model_validator(mode="after")
    def _check(self) -> Condition:
        wants_list = self.op in {"in", "not_in"}
        if wants_list != isinstance(self.value, tuple):
            shape = "a list of values" if wants_list else "a single value"
            raise rule_error(".value", f"operator {self.op!r} takes {shape}")
        return self

    def holds(self, record: dict[str, object]) -> bool:
        """Whether ``record`` passes this test; a missing field reads as null. TransformError for a value
        no filter can hold (a list or an object, e.g. left by an edited replay): it raised a TypeError."""
        value = record.get(self.field)
        if isinstance(value, list | dict):
            kind = "a list" if isinstance(value, list) else "an object"
            raise TransformError(f"field {self.field!r} holds {kind}, where its map's filter takes one value")
        actual = scalar_key(value)
        if isinstance(self.value, tuple):
            found = actual in {scalar_key(v) for v in self.value}
            return found if self.op == "in" else not found
        equal = actual == scalar_key(self.value)
        return equal if self.op == "eq" else not equal


class SourceFilter(_Strict):
    """Which source rows a map takes, per side; every condition must hold."""

    fo: tuple[Condition, ...] = ()
    dataverse: tuple[Condition, ...] = ()
