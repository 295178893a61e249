"""Reading map files: JSON in, a validated ``TableMap`` out, or a ``MapDefinitionError`` that says where."""

from __future__ import annotations

import json
from collections.abc import Iterable
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

from pydantic import ValidationError

from dualbus.d365 import SchemaFileError, dataverse_tables, fo_entities
from dualbus.shared.errors import MapDefinitionError
from dualbus.shared.maps._registry import MapSet
from dualbus.shared.maps._schemas import bind_schemas, schema_problems
from dualbus.shared.maps._table import TableMap

__all__ = ["load_map_file", "load_maps", "parse_map"]


def load_map_file(path: Path | str) -> TableMap:
    """Read and validate one map file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MapDefinitionError(f"{path}: cannot read the map file: {exc}") from exc
    return parse_map(text, source=str(path))


def load_maps(directory: Path | str | None = None) -> MapSet:
    """Every map shipped with dualbus (or every ``*.json`` in ``directory``), validated together.

    Each map is also checked against the published schemas of both systems (``d365``): a name that F&O
    or Dataverse does not have is an error naming the map, before anything runs.
    """
    folder: Traversable = files("dualbus.shared.maps") / "data" if directory is None else Path(directory)
    entries = sorted((entry for entry in folder.iterdir() if entry.name.endswith(".json")), key=_name)
    if not entries:
        raise MapDefinitionError(f"{folder}: no map files (*.json) found")
    return _load_all(entries)


def parse_map(text: str, *, source: str) -> TableMap:
    """Validate the JSON text of one map; ``source`` names it in errors."""
    try:
        raw = json.loads(text, object_pairs_hook=_reject_duplicate_keys)
    except json.JSONDecodeError as exc:
        raise MapDefinitionError(
            f"{source}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
    except _DuplicateKeyError as exc:
        raise MapDefinitionError(f"{source}: {exc}") from exc
    try:
        return TableMap.model_validate(raw)
    except ValidationError as exc:
        raise MapDefinitionError(_describe(source, exc)) from exc


def _load_all(entries: Iterable[Traversable]) -> MapSet:
    sources: dict[str, str] = {}
    maps: list[TableMap] = []
    for entry in entries:
        try:
            text = entry.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise MapDefinitionError(f"{entry}: cannot read the map file: {exc}") from exc
        table_map = _against_schemas(parse_map(text, source=entry.name), entry.name)
        if table_map.name in sources:
            raise MapDefinitionError(
                f"{entry.name}: $.name: map name {table_map.name!r} is also used by {sources[table_map.name]}"
            )
        sources[table_map.name] = entry.name
        maps.append(table_map)
    return MapSet(maps, sources=sources)


def _against_schemas(table_map: TableMap, source: str) -> TableMap:
    try:
        entities, tables = fo_entities(), dataverse_tables()
    except SchemaFileError as exc:
        raise MapDefinitionError(f"the schema files shipped with dualbus are broken: {exc}") from exc
    problems = schema_problems(table_map, entities, tables)
    if problems:
        raise MapDefinitionError("\n".join(f"{source} (map {table_map.name!r}): {p}" for p in problems))
    return bind_schemas(table_map, tables, entities)


def _name(entry: Traversable) -> str:
    return entry.name


class _DuplicateKeyError(ValueError):
    """A JSON object repeats a key (json keeps the last silently; a map author meant one of them)."""


def _reject_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKeyError(f"key {key!r} appears twice in one JSON object")
        result[key] = value
    return result


def _describe(source: str, exc: ValidationError) -> str:
    """One line per problem: the file, the JSON path of the problem and what is wrong there."""
    lines = []
    for error in exc.errors(include_url=False):
        context = error.get("ctx") or {}
        path = _json_path(error["loc"]) + str(context.get("path", ""))
        message = str(context["detail"]) if error["type"] == "map_rule" else error["msg"]
        lines.append(f"{source}: {path}: {message}")
    return "\n".join(lines)


def _json_path(loc: tuple[int | str, ...]) -> str:
    path = "$"
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path
