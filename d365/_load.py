"""Reading the schema files shipped in this package, once, checked together."""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from types import MappingProxyType
from typing import TYPE_CHECKING, TypeVar

from pydantic import BaseModel, ValidationError

from dualbus.d365._dataverse import DvTable
from dualbus.d365._errors import SchemaFileError
from dualbus.d365._fo import FoEntity

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["dataverse_tables", "fo_entities"]

_Model = TypeVar("_Model", bound=BaseModel)


@cache
def fo_entities() -> Mapping[str, FoEntity]:
    """Every F&O data entity dualbus knows, by OData entity set name."""
    entities = _load("fo", FoEntity)
    found = {entity.entity_set: entity for entity in entities}
    for entity in entities:
        for relation in entity.relations:
            if relation.entity_set not in found:
                where = f"fo/{entity.entity_set}.json"
                raise SchemaFileError(f"{where}: relation to unknown {relation.entity_set}")
    return MappingProxyType(found)


@cache
def dataverse_tables() -> Mapping[str, DvTable]:
    """Every Dataverse table dualbus knows, by entity set name."""
    tables = _load("dataverse", DvTable)
    found = {table.entity_set: table for table in tables}
    for table in tables:
        for name, column in table.columns.items():
            unknown = [target for target in column.targets.values() if target not in found]
            if unknown:
                where = f"dataverse/{table.entity_set}.json"
                raise SchemaFileError(f"{where}: {name} points at unknown {unknown}")
    return MappingProxyType(found)


def _load(folder: str, model: type[_Model]) -> list[_Model]:
    loaded: list[_Model] = []
    for entry in sorted(files("dualbus.d365").joinpath(folder).iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".json"):
            continue
        where = f"{folder}/{entry.name}"
        try:
            item = model.model_validate(json.loads(entry.read_text(encoding="utf-8")))
        except (ValueError, ValidationError) as exc:
            raise SchemaFileError(f"{where}: {exc}") from exc
        name = getattr(item, "entity_set", "")
        if f"{name}.json" != entry.name:
            raise SchemaFileError(f"{where}: the file of entity set {name!r} must be named {name}.json")
        loaded.append(item)
    return loaded
