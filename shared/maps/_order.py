"""Initial-sync order, derived from the maps' lookups: a row's lookup targets must exist before it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from dualbus.shared.errors import MapDefinitionError
from dualbus.shared.maps._table import TableMap

__all__ = [
    "area_dependencies",
    "area_layers",
    "area_order",
    "dependency_layers",
    "find_cycle",
    "map_order",
    "table_dependencies",
]

Graph = Mapping[str, frozenset[str]]


def table_dependencies(maps: Iterable[TableMap]) -> dict[str, frozenset[str]]:
    """For each Dataverse table, the tables its lookups point at."""
    graph: dict[str, set[str]] = {}
    for table_map in maps:
        targets = graph.setdefault(table_map.dataverse_table, set())
        targets.update(lookup.target_table for lookup in table_map.lookups)
    return {table: frozenset(targets) for table, targets in graph.items()}


def area_dependencies(maps: Iterable[TableMap]) -> dict[str, frozenset[str]]:
    """For each area, the other areas whose tables its lookups point at."""
    maps = list(maps)
    area_of_table = {m.dataverse_table: m.area for m in maps}
    graph: dict[str, set[str]] = {m.area: set() for m in maps}
    for table_map in maps:
        for lookup in table_map.lookups:
            target_area = area_of_table.get(lookup.target_table)
            # Lookups inside one area (an account to its customer group) order maps, not areas.
            if target_area is not None and target_area != table_map.area:
                graph[table_map.area].add(target_area)
    return {area: frozenset(targets) for area, targets in graph.items()}


def area_order(maps: Iterable[TableMap]) -> list[str]:
    """Areas in initial-sync order: dependencies first, then by depth, ties broken by name."""
    return _layered(area_dependencies(maps), what="areas")


def area_layers(maps: Iterable[TableMap], areas: Iterable[str] | None = None) -> list[list[str]]:
    """Areas in initial-sync layers: each layer needs only areas of earlier layers.

    A layer can be synced as a whole once the layers before it were applied. ``areas`` keeps only those.
    """
    dependencies = area_dependencies(maps)
    if areas is not None:
        wanted = set(areas)
        dependencies = {area: needs for area, needs in dependencies.items() if area in wanted}
    return dependency_layers(dependencies)


def dependency_layers(dependencies: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Nodes in layers: each layer needs only nodes of earlier ones (a cycle ends up in the last one)."""
    remaining = {node: set(needs) & set(dependencies) for node, needs in dependencies.items()}
    layers: list[list[str]] = []
    while remaining:
        ready = sorted(node for node, needs in remaining.items() if not needs)
        layer = ready or sorted(remaining)
        layers.append(layer)
        for node in layer:
            del remaining[node]
        for needs in remaining.values():
            needs.difference_update(layer)
    return layers


def map_order(maps: Iterable[TableMap]) -> list[TableMap]:
    """Maps in initial-sync order: by area order, then by lookup depth inside the area, then by name."""
    maps = list(maps)
    areas = {area: index for index, area in enumerate(area_order(maps))}
    tables = {table: index for index, table in enumerate(_layered(table_dependencies(maps), what="tables"))}
    return sorted(maps, key=lambda m: (areas[m.area], tables[m.dataverse_table], m.name))


def find_cycle(graph: Graph) -> list[str] | None:
    """One cycle of ``graph`` as a path that returns to its start, or None when it has none."""
    state: dict[str, int] = {}  # 1 while on the current path, 2 once fully explored

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for target in sorted(graph.get(node, frozenset())):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target, [*path, target])) is not None:
                return cycle
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start, [start])) is not None:
            return found
    return None


def _layered(graph: Graph, *, what: str) -> list[str]:
    """Topological order where each node sits one layer below its deepest dependency."""
    cycle = find_cycle(graph)
    if cycle is not None:
        raise MapDefinitionError(f"the lookups between {what} form a cycle: {' -> '.join(cycle)}")
    depth: dict[str, int] = {}

    def depth_of(node: str) -> int:
        if node not in depth:
            depth[node] = 1 + max((depth_of(t) for t in graph.get(node, frozenset())), default=-1)
        return depth[node]

    nodes = set(graph) | {t for targets in graph.values() for t in targets}
    return sorted(nodes, key=lambda node: (depth_of(node), node))
