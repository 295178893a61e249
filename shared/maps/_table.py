"""A table map: one F&O data entity and one Dataverse table, with the rules that need the whole map."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from dualbus.shared.maps._fields import (
    Direction,
    FieldMap,
    LookupMap,
    Scalar,
    Side,
    SourceFilter,
    other_side,
    rule_error,
)
from dualbus.shared.maps._memo import derived

__all__ = ["AREAS", "Area", "TableMap"]

Area = Literal["company", "currency", "organisation", "customer", "vendor", "product"]
AREAS: tuple[Area, ...] = ("company", "currency", "organisation", "customer", "vendor", "product")
MapName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
KeyPart = Annotated[str, Field(min_length=1)]


class TableMap(BaseModel):
    """How rows of one F&O entity and one Dataverse table correspond, field by field."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: MapName
    area: Area
    description: str = Field(min_length=1)
    docs: tuple[str, ...] = ()
    notes: str = ""
    direction: Direction
    fo_entity: str = Field(min_length=1)
    dataverse_table: str = Field(min_length=1)
    fo_key: tuple[KeyPart, ...] = Field(min_length=1)
    dataverse_key: tuple[KeyPart, ...] = Field(min_length=1)
    fields: tuple[FieldMap, ...] = Field(min_length=1)
    lookups: tuple[LookupMap, ...] = ()
    source_filter: SourceFilter = SourceFilter()

    def carries(self, target: Side) -> bool:
        """Whether this map writes changes to ``target``."""
        return self.direction.carries(target)

    def table_on(self, side: Side) -> str:
        """The entity set (Dataverse) or public collection (F&O) on one side."""
        return self.fo_entity if side == "fo" else self.dataverse_table

    def key_on(self, side: Side) -> tuple[str, ...]:
        """The natural key's field names on one side."""
        return self.fo_key if side == "fo" else self.dataverse_key

    # What the methods below return depends on the (frozen) map alone: each is worked out once per map
    # (shared.maps._memo), as a consumer asks for them for every message.

    def fields_towards(self, target: Side) -> tuple[FieldMap, ...]:
        """The fields written when a change goes to ``target``."""
        return derived(self, ("fields_towards", target), lambda: self._fields_towards(target))

    def lookups_towards(self, target: Side) -> tuple[LookupMap, ...]:
        """The lookups carried when a change goes to ``target``."""
        return derived(self, ("lookups_towards", target), lambda: self._lookups_towards(target))

    def lookup(self, navigation: str) -> LookupMap | None:
        """The lookup bound through a Dataverse navigation property, if any."""
        return derived(self, "lookup_by_navigation", self._lookups_by_navigation).get(navigation)

    def field_named(self, side: Side, name: str) -> FieldMap | None:
        """The field called ``name`` on ``side``, if any."""
        return derived(self, ("field_by_name", side), lambda: self._fields_by_name(side)).get(name)

    def carried_from(self, source: Side) -> tuple[str, ...]:
        """Every field of ``source`` a change from it carries: the key, what the fields and lookups write on
        the other side, and the source filter's fields (so a consumer can check the filter from the change
        alone). What a producer reads and publishes, and what the F&O write digest covers
        (``shared.fo_echo``)."""
        return derived(self, ("carried_from", source), lambda: self._carried_from(source))

    def no_values_towards(self, target: Side) -> dict[str, Scalar]:
        """F&O's "no value" of each field written to ``target`` (``FieldMap.no_value_on``), as ``target``
        holds it, by the field's name there; a field whose "no value" is not known is left out."""
        return derived(self, ("no_values_towards", target), lambda: self._no_values_towards(target))

    def _no_values_towards(self, target: Side) -> dict[str, Scalar]:
        return {
            name: empty
            for f in self.fields_towards(target)
            if (empty := f.no_value_on(target)) is not None and (name := f.name_on(target))
        }

    def _carried_from(self, source: Side) -> tuple[str, ...]:
        target = other_side(source)
        names = [f.name_on(source) for f in self.fields_towards(target) if f.constant is None]
        for composed in self.fields_towards(target):
            names.extend(composed.compose or ())  # the F&O fields a Dataverse value is joined from
        for lookup in self.lookups_towards(target):
            names.extend(lookup.key.values() if source == "fo" else (lookup.dataverse,))
        conditions = self.source_filter.fo if source == "fo" else self.source_filter.dataverse
        names.extend(condition.field for condition in conditions)
        return tuple(dict.fromkeys([*self.key_on(source), *(n for n in names if n)]))

    def _fields_towards(self, target: Side) -> tuple[FieldMap, ...]:
        return tuple(f for f in self.fields if f.direction.carries(target) and f.name_on(target))

    def _lookups_towards(self, target: Side) -> tuple[LookupMap, ...]:
        return tuple(lookup for lookup in self.lookups if lookup.direction.carries(target))

    def _lookups_by_navigation(self) -> dict[str, LookupMap]:
        by_navigation: dict[str, LookupMap] = {}
        for lookup in self.lookups:
            by_navigation.setdefault(lookup.dataverse, lookup)  # the first one, as a scan would find
        return by_navigation

    def _fields_by_name(self, side: Side) -> dict[str, FieldMap]:
        by_name: dict[str, FieldMap] = {}
        for field in self.fields:
            name = field.name_on(side)
            if name is not None:
                by_name.setdefault(name, field)  # the first one, as a scan would find
        return by_name

    @model_validator(mode="after")
    def _check(self) -> TableMap:
        self._check_directions()
        self._check_unique_targets()
        for side in ("fo", "dataverse"):
            for index, part in enumerate(self.key_on(side)):
                self._check_key_part(side, index, part)
        return self

    def _check_directions(self) -> None:
        parts: list[tuple[str, FieldMap | LookupMap]] = [
            *((f".fields[{i}]", f) for i, f in enumerate(self.fields)),
            *((f".lookups[{i}]", lookup) for i, lookup in enumerate(self.lookups)),
        ]
        for path, part in parts:
            if not part.direction.within(self.direction):
                raise rule_error(
                    f"{path}.direction",
                    f"{part.label()!r} goes {part.direction.value} in a map that goes {self.direction.value}",
                )

    def _check_unique_targets(self) -> None:
        for target in ("fo", "dataverse"):
            seen: dict[str, str] = {}
            for index, field in enumerate(self.fields):
                name = field.name_on(target)
                if name and field.direction.carries(target):
                    _claim(seen, name, f".fields[{index}].{target}", target)
            for index, lookup in enumerate(self.lookups):
                if not lookup.direction.carries(target):
                    continue
                names = [lookup.dataverse] if target == "dataverse" else list(lookup.key.values())
                for name in names:
                    # Lookups may share an F&O field (dataAreaId feeds company and group): the engine
                    # checks at run time that they agree.
                    _claim(seen, name, f".lookups[{index}]", target, shared_ok=target == "fo")

    def _check_key_part(self, side: Side, index: int, part: str) -> None:
        # A change towards a side must be able to name the row there: each of that side's key parts is
        # written by a field, a constant or a lookup. (The source side's key only identifies the event.)
        path = f".{side}_key[{index}]"
        if self.carries(side) and not self._writes(side, side, part):
            raise rule_error(path, f"key part {part!r} is not carried by any field or lookup to {side}")
        if side == "dataverse" and (lookup := self.lookup(part)) is not None and len(lookup.key) != 1:
            raise rule_error(path, f"key part {part!r} is a lookup to a table with a composite key")

    def _writes(self, target: Side, side: Side, part: str) -> bool:
        """Whether a change towards ``target`` carries ``part`` (a name on ``side``)."""
        for field in self.fields:
            if field.name_on(side) == part and field.direction.carries(target):
                return True
        for lookup in self.lookups_towards(target):
            names = (lookup.dataverse,) if side == "dataverse" else tuple(lookup.key.values())
            if part in names:
                return True
        return False


def _claim(seen: dict[str, str], name: str, path: str, target: str, *, shared_ok: bool = False) -> None:
    """Record that ``path`` writes ``name`` on ``target``; two writers of one name are an error."""
    owner = seen.get(name)
    if owner is not None and not (shared_ok and owner.startswith(".lookups") and path.startswith(".lookups")):
        raise rule_error(path, f"{target} field {name!r} is already written by {owner}")
    seen.setdefault(name, path)
