"""A validated set of table maps and the rules that span maps."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence

from dualbus.shared.errors import MapDefinitionError
from dualbus.shared.maps._fields import Side, other_side
from dualbus.shared.maps._order import area_dependencies, find_cycle, table_dependencies
from dualbus.shared.maps._table import TableMap

__all__ = ["MapSet", "check_map_set"]


class MapSet:
    """The maps dualbus runs with, checked together: unique names, resolvable lookups, no cycles."""

    # Weak references let what is derived from a map set be remembered while it lives (shared.maps._memo).
    __slots__ = ("__weakref__", "_by_name")

    def __init__(self, maps: Iterable[TableMap], *, sources: Mapping[str, str] | None = None) -> None:
        """Check ``maps`` together; ``sources`` names each map's file in errors (by map name)."""
        maps = list(maps)
        named = {m.name: f"map {m.name!r}" for m in maps} | dict(sources or {})
        check_map_set(maps, named)
        self._by_name = {m.name: m for m in maps}

    def __iter__(self) -> Iterator[TableMap]:
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __getitem__(self, name: str) -> TableMap:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"no map named {name!r}; known: {', '.join(sorted(self._by_name))}") from None

    @property
    def names(self) -> tuple[str, ...]:
        """Every map's name, in load order."""
        return tuple(self._by_name)

    def table_map(self, table: str) -> TableMap | None:
        """A map whose Dataverse side is ``table`` (maps of one table share its key), or None."""
        return next((m for m in self if m.dataverse_table == table), None)

    def in_area(self, area: str) -> tuple[TableMap, ...]:
        """The maps of one area."""
        return tuple(m for m in self if m.area == area)

    def for_source(self, side: Side, name: str, *, area: str | None = None) -> tuple[TableMap, ...]:
        """The maps (of ``area``, if given) that read ``name`` as their source on ``side``."""
        target = other_side(side)
        return tuple(
            m for m in self if m.table_on(side) == name and m.carries(target) and area in (None, m.area)
        )


def check_map_set(maps: Sequence[TableMap], sources: Mapping[str, str]) -> None:
    """Raise ``MapDefinitionError`` naming the file (from ``sources``) when maps do not fit together."""
    seen: set[str] = set()
    keys_of: dict[str, frozenset[str]] = {}
    for table_map in maps:
        where = sources[table_map.name]
        if table_map.name in seen:
            raise MapDefinitionError(f"{where}: $.name: map name {table_map.name!r} is used twice")
        seen.add(table_map.name)
        key = keys_of.setdefault(table_map.dataverse_table, frozenset(table_map.dataverse_key))
        if key != frozenset(table_map.dataverse_key):
            raise MapDefinitionError(
                f"{where}: $.dataverse_key: another map keys {table_map.dataverse_table} by {sorted(key)}"
            )
    for table_map in maps:
        _check_lookups(table_map, keys_of, sources[table_map.name])
    for graph, what in ((table_dependencies(maps), "tables"), (area_dependencies(maps), "areas")):
        cycle = find_cycle(graph)
        if cycle is not None:
            involved = sorted({sources[m.name] for m in maps if {m.dataverse_table, m.area} & set(cycle)})
            where = ", ".join(involved)
            raise MapDefinitionError(
                f"{where}: $.lookups: the lookups between {what} form a cycle: {' -> '.join(cycle)}"
            )


def _check_lookups(table_map: TableMap, keys_of: Mapping[str, frozenset[str]], source: str) -> None:
    for index, lookup in enumerate(table_map.lookups):
        path = f"{source}: $.lookups[{index}]"
        key = keys_of.get(lookup.target_table)
        if key is None:
            raise MapDefinitionError(
                f"{path}.target_table: {lookup.target_table!r} is not the Dataverse table of any map"
            )
        if frozenset(lookup.key) != key:
            raise MapDefinitionError(
                f"{path}.key: columns {sorted(lookup.key)} are not the alternate key of "
                f"{lookup.target_table} ({sorted(key)})"
            )
