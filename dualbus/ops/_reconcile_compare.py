"""Comparing one table map's rows on both sides, by natural key, in the target side's field names.

A source row is transformed with the map (``to_dataverse`` / ``to_fo``), exactly as a consumer would before
writing it; a target row is read as it is, its lookups already resolved to the referenced rows' natural
keys. Only one side is held in memory (the target's, as compact tuples); source rows stream past it.

Equality rules: numbers compare numerically (``100`` equals ``100.0`` and ``"100.00"``), booleans only with
booleans, strings exactly, and None, a missing column and an empty string are the same. The last is because
F&O holds no null (an unset text field reads as ``""``), where Dataverse holds null. For the same reason a
Dataverse null and F&O's "no value" of a field that cannot be null (a credit limit's 0,
``FieldMap.fo_empty``) are the same. Natural keys, and lookups (which are natural keys of other rows),
compare without regard to case: both systems match keys case-insensitively (F&O's ``dataAreaId`` reads
``usmf`` where Dataverse says ``USMF``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from dualbus.consumers import VERSION_COLUMN, VERSION_FIELD
from dualbus.ops._reconcile_company import RowCompanies
from dualbus.shared.errors import TransformError
from dualbus.shared.maps import (
    LookupMap,
    MapSet,
    Side,
    TableMap,
    natural_key,
    other_side,
    passes_source_filter,
    target_key,
    to_dataverse,
    to_fo,
)

__all__ = ["DriftKind", "FieldDrift", "MapComparison", "RecordDrift", "TargetEntry", "same_value"]

Row = Mapping[str, object]
# dualbus's version mark on target rows (docs/processing.md): the source version last applied there.
_MARK: dict[Side, str] = {"dataverse": VERSION_COLUMN, "fo": VERSION_FIELD}
# A constant tells one map's rows from another's only where several maps write one table.
_SHARED_TABLE = 2


class DriftKind(StrEnum):
    """How a record differs between the two systems."""

    MISSING_IN_FO = "missing_in_fo"
    MISSING_IN_DATAVERSE = "missing_in_dataverse"
    DIFFERS = "differs"


@dataclass(frozen=True, slots=True)
class FieldDrift:
    """One field that differs: its name on the compared (target) side and both values, mapped."""

    field: str
    fo: object
    dataverse: object


@dataclass(frozen=True, slots=True)
class RecordDrift:
    """One drifted record of one map; ``key`` is its natural key in F&O's field names."""

    map_name: str
    area: str
    company: str | None
    key: dict[str, object]
    kind: DriftKind
    fields: tuple[FieldDrift, ...] = ()


@dataclass(frozen=True, slots=True)
class TargetEntry:
    """What is kept of a target row: its key as read, compared values, dualbus's version mark, and who
    modified it last (a Dataverse row's ``_modifiedby_value``; F&O exposes none)."""

    key: tuple[object, ...]
    values: tuple[object, ...]
    company: str | None
    mark: int | None
    modified_by: str | None = None


def same_value(left: object, right: object, *, fold: bool = False) -> bool:
    """Whether two field values are equal under reconcile's rules; ``fold`` ignores case (keys, lookups)."""
    left, right = _blank_to_none(left), _blank_to_none(right)
    if left is None or right is None:
        return left is None and right is None
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    if isinstance(left, Mapping) and isinstance(right, Mapping):
        return left.keys() == right.keys() and all(same_value(left[k], right[k], fold=fold) for k in left)
    numbers = _number(left), _number(right)
    if (
        numbers[0] is not None
        and numbers[1] is not None
        and not (isinstance(left, str) and isinstance(right, str))
    ):
        return numbers[0] == numbers[1]
    if fold and isinstance(left, str) and isinstance(right, str):
        return left.casefold() == right.casefold()
    return left == right


def _blank_to_none(value: object) -> object:
    return None if value == "" else value


def _number(value: object) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float | str):
        try:
            # str() first: Decimal(0.1) would carry the binary float's full expansion.
            number = Decimal(str(value))
        except InvalidOperation:
            return None
        return number if number.is_finite() else None
    return None


class MapComparison:
    """The comparison of one map from its ``source`` side: load target rows, then check source rows."""

    def __init__(
        self, maps: MapSet, table_map: TableMap, source: Side, *, companies: frozenset[str] | None = None
    ) -> None:
        """``companies`` (upper case) limits the comparison to their rows; rows of no company always count."""
        self.table_map = table_map
        self._companies = companies
        self.source: Side = source
        self.target = other_side(source)
        self._maps = maps
        self._lookups = {lk.dataverse: lk for lk in table_map.lookups_towards(self.target)}
        self.names = self._compared_names()
        # Names whose values are other rows' natural keys: compared without regard to case.
        self._folded = frozenset(self._lookup_names())
        # F&O holds no null: its "no value" of a field (a credit limit's 0) is the same as Dataverse's null.
        self._fo_empties = table_map.no_values_towards(self.target)
        self._constants = self._discriminators()
        self._row_companies = RowCompanies(table_map, source)
        self._targets: dict[tuple[object, ...], TargetEntry] = {}

    def add_target(self, row: Row) -> bool:
        """Keep a target row for comparison; False when out of scope. Raises TransformError on a bad key."""
        if not self._in_target_scope(row):
            return False
        key = natural_key(self.table_map, self.target, row)
        company = self._row_companies.of_compared(self.target, key, row)
        if not self._wanted(company):
            return False
        mark = row.get(_MARK[self.target])
        entry = TargetEntry(
            key=tuple(key.values()),
            values=tuple(self._target_value(name, row) for name in self.names),
            company=company,
            mark=int(mark) if isinstance(mark, int) and not isinstance(mark, bool) else None,
            modified_by=str(row["_modifiedby_value"]) if row.get("_modifiedby_value") else None,
        )
        self._targets[_canonical(key.values())] = entry
        return True

    def check_source(self, row: Row) -> tuple[str | None, RecordDrift | None] | None:
        """Compare one source row with its target: (company, drift or None); None when out of scope.

        Raises TransformError (or LookupUnresolvedError) when the map cannot transform the row.
        """
        if not passes_source_filter(self.table_map, self.source, row):
            return None
        try:
            key, values = self._source_view(row)
        except TransformError:
            # Its target row is not an orphan: the source has the record, only not in a mappable shape.
            self._forget(row)
            raise
        company = self._row_companies.of_compared(self.source, key, row)
        if not self._wanted(company):
            return None
        entry = self._targets.pop(_canonical(key.values()), None)
        if entry is None:
            return company, self._drift(company, tuple(key.values()), self._missing_on(self.target))
        fields = tuple(
            self._field_drift(name, mine, theirs)
            for name, mine, theirs in zip(self.names, values, entry.values, strict=True)
            if not self._same(name, mine, theirs)
        )
        return company, self._drift(company, entry.key, DriftKind.DIFFERS, fields) if fields else None

    def _same(self, name: str, mine: object, theirs: object) -> bool:
        if same_value(mine, theirs, fold=name in self._folded):
            return True
        if name not in self._fo_empties:
            return False
        empty = self._fo_empties[name]
        return (mine is None and same_value(theirs, empty)) or (theirs is None and same_value(mine, empty))

    def leftovers(self) -> Iterator[tuple[RecordDrift, TargetEntry]]:
        """The target rows no source row matched (missing on the source side), emptied as it goes."""
        kind = self._missing_on(self.source)
        while self._targets:
            _, entry = self._targets.popitem()
            yield self._drift(entry.company, entry.key, kind), entry

    def _forget(self, row: Row) -> None:
        try:
            key = target_key(self.table_map, self.source, natural_key(self.table_map, self.source, row))
        except TransformError:
            return
        self._targets.pop(_canonical(key.values()), None)

    def row_company(self, side: Side, row: Row) -> str | None:
        """The company a row of ``side`` names itself (for rows that cannot be compared); None: none."""
        return self._row_companies.of_row(side, row)

    def _wanted(self, company: str | None) -> bool:
        return company is None or self._companies is None or company in self._companies

    def fo_key(self, key_values: tuple[object, ...]) -> dict[str, object]:
        """A key in the target side's order, named as on F&O where the parts correspond position by position.

        A map whose keys differ in shape (products: company and number against one composed number) names
        the key as the target side does.
        """
        names = self.table_map.fo_key
        if len(names) != len(key_values):
            names = self.table_map.key_on(self.target)
        return dict(zip(names, key_values, strict=True))

    def _drift(
        self,
        company: str | None,
        key_values: tuple[object, ...],
        kind: DriftKind,
        fields: tuple[FieldDrift, ...] = (),
    ) -> RecordDrift:
        return RecordDrift(
            self.table_map.name, self.table_map.area, company, self.fo_key(key_values), kind, fields
        )

    def _field_drift(self, name: str, source_value: object, target_value: object) -> FieldDrift:
        if self.source == "fo":
            return FieldDrift(name, source_value, target_value)
        return FieldDrift(name, target_value, source_value)

    @staticmethod
    def _missing_on(side: Side) -> DriftKind:
        return DriftKind.MISSING_IN_FO if side == "fo" else DriftKind.MISSING_IN_DATAVERSE

    def _source_view(self, row: Row) -> tuple[dict[str, object], tuple[object, ...]]:
        if self.source == "fo":
            change = to_dataverse(self.table_map, row)
            bindings = {b.navigation: b.key for b in change.lookups}
            values = tuple(
                self._reference(self._lookups[n], bindings.get(n))
                if n in self._lookups
                else change.payload.get(n)
                for n in self.names
            )
            return dict(change.key), values
        fo_change = to_fo(self.table_map, row)
        return dict(fo_change.key), tuple(fo_change.payload.get(name) for name in self.names)

    def _target_value(self, name: str, row: Row) -> object:
        lookup = self._lookups.get(name) if self.target == "dataverse" else None
        if lookup is None:
            return row.get(name)
        value = row.get(name)
        return self._reference(lookup, value if isinstance(value, Mapping) else None)

    def _reference(self, lookup: LookupMap, key: Mapping[str, object] | None) -> object:
        """A lookup as the referenced row's natural key: its value when one column, else a dict, or None.

        Key columns that are lookups themselves (a group's company) are left out: the row's own company
        already says it, and Dataverse returns them as GUIDs.
        """
        if key is None:
            return None
        target_map = self._maps.table_map(lookup.target_table)
        columns = [c for c in lookup.key if target_map is None or target_map.lookup(c) is None]
        plain = {c: key.get(c) for c in columns}
        return next(iter(plain.values())) if len(plain) == 1 else plain

    def _compared_names(self) -> tuple[str, ...]:
        """Every field written to the target except the key parts (those are the match itself)."""
        key = set(self.table_map.key_on(self.target))
        names = [f.name_on(self.target) for f in self.table_map.fields_towards(self.target)]
        names.extend(self._lookup_names())
        return tuple(n for n in dict.fromkeys(names) if n and n not in key)

    def _lookup_names(self) -> list[str]:
        if self.target == "dataverse":
            return list(self._lookups)
        return [name for lk in self.table_map.lookups_towards("fo") for name in lk.key.values()]

    def _discriminators(self) -> dict[str, object]:
        """Constants that tell this map's target rows from another map's rows of the same table.

        A constant every writer of the table sets alike (customers' LanguageId) tells nothing apart.
        """
        table = self.table_map.table_on(self.target)
        others = [
            m
            for m in self._maps
            if m.table_on(self.target) == table and m.carries(self.target) and m.name != self.table_map.name
        ]
        if len(others) + 1 < _SHARED_TABLE:
            return {}
        mine = _constants(self.table_map, self.target)
        return {
            name: value
            for name, value in mine.items()
            if any(not same_value(_constants(other, self.target).get(name), value) for other in others)
        }

    def _in_target_scope(self, row: Row) -> bool:
        if not passes_source_filter(self.table_map, self.target, row):
            return False
        return all(same_value(row.get(name), value) for name, value in self._constants.items())


def _constants(table_map: TableMap, target: Side) -> dict[str, object]:
    return {
        name: f.constant
        for f in table_map.fields_towards(target)
        if f.constant is not None and (name := f.name_on(target))
    }


def _canonical(parts: Iterable[object]) -> tuple[object, ...]:
    return tuple(v.casefold() if isinstance(v, str) else v for v in parts)
