"""Table maps as data and the pure transform engine between F&O rows and Dataverse rows.

A map (one JSON file in ``data/``) pairs one F&O data entity with one Dataverse table, in the spirit of
dual-write's table maps: per field a direction, value maps for enums, defaults and constants, lookups bound by
the target's alternate key, and source filters. ``load_maps()`` returns every shipped map, checked together;
``to_dataverse`` / ``to_fo`` turn a source row into a change for the other side; ``area_order`` gives the
initial-sync order of areas, derived from the lookups; ``delete_fields`` / ``target_key`` say what a delete
carries and which target row it removes.
"""

from __future__ import annotations

from dualbus.shared.maps._changes import DataverseChange, FoChange, LookupBinding, odata_literal
from dualbus.shared.maps._deletes import delete_fields, delete_identity, target_key
from dualbus.shared.maps._engine import natural_key, passes_source_filter, to_dataverse, to_fo
from dualbus.shared.maps._fields import (
    Condition,
    Direction,
    FieldMap,
    FieldType,
    LookupMap,
    Scalar,
    Side,
    SourceFilter,
    ValuePair,
    other_side,
)
from dualbus.shared.maps._loader import load_map_file, load_maps, parse_map
from dualbus.shared.maps._memo import derived
from dualbus.shared.maps._order import (
    area_dependencies,
    area_layers,
    area_order,
    dependency_layers,
    map_order,
    table_dependencies,
)
from dualbus.shared.maps._references import (
    Fetcher,
    Resolver,
    bind_reference,
    dataverse_key_literal,
    entity_path,
    expand_lookups,
    key_segment,
    resolved_body,
)
from dualbus.shared.maps._registry import MapSet
from dualbus.shared.maps._table import AREAS, Area, TableMap

__all__ = [
    "AREAS",
    "Area",
    "Condition",
    "DataverseChange",
    "Direction",
    "Fetcher",
    "FieldMap",
    "FieldType",
    "FoChange",
    "LookupBinding",
    "LookupMap",
    "MapSet",
    "Resolver",
    "Scalar",
    "Side",
    "SourceFilter",
    "TableMap",
    "ValuePair",
    "area_dependencies",
    "area_layers",
    "area_order",
    "bind_reference",
    "dataverse_key_literal",
    "delete_fields",
    "delete_identity",
    "dependency_layers",
    "derived",
    "entity_path",
    "expand_lookups",
    "key_segment",
    "load_map_file",
    "load_maps",
    "map_order",
    "natural_key",
    "odata_literal",
    "other_side",
    "parse_map",
    "passes_source_filter",
    "resolved_body",
    "table_dependencies",
    "target_key",
    "to_dataverse",
    "to_fo",
]
