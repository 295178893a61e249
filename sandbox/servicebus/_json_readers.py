"""Typed readers of a parsed JSON document: each names the JSON path of what it rejects.

Used by ``sandbox.servicebus.config`` to read Microsoft's emulator ``Config.json``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any, NoReturn, TypeAlias

from dualbus.sandbox.errors import SandboxConfigError

__all__ = [
    "Field",
    "Reader",
    "array",
    "boolean",
    "count",
    "entity_ref",
    "fail",
    "name",
    "object_",
    "parse_duration",
    "properties",
    "require",
    "span",
    "string",
    "unique",
]

_DURATION = re.compile(
    r"P(?!$)(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?"
    r"(?:T(?=\d)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?",
    re.ASCII,
)
Reader: TypeAlias = Callable[[object, str], Any]
Field: TypeAlias = tuple[str, Reader]  # the dataclass attribute and the reader of its JSON value


def parse_duration(text: str) -> timedelta:
    """Parse an ISO 8601 duration such as ``PT1M`` or ``P14D`` (a year is 365 days, a month 30, as .NET's)."""
    match = _DURATION.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not an ISO 8601 duration such as PT1M or P14D")
    years, months, weeks, days, hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    try:
        return timedelta(
            days=years * 365 + months * 30 + weeks * 7 + days, hours=hours, minutes=minutes, seconds=seconds
        )
    except OverflowError as exc:
        raise ValueError(f"{text!r} is too long a duration") from exc


def fail(path: str, message: str) -> NoReturn:
    raise SandboxConfigError(f"{path}: {message}")


def object_(value: object, path: str, allowed: set[str] | frozenset[str] | None) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        fail(path, f"expected a JSON object, got {type(value).__name__}")
    if allowed is not None:
        for key in value:
            if key not in allowed:
                fail(f"{path}.{key}", f"unknown key; expected one of {', '.join(sorted(allowed))}")
    return dict(value)


def require(node: Mapping[str, Any], key: str, path: str) -> object:
    if key not in node:
        fail(f"{path}.{key}", "required")
    return node[key]


def array(node: Mapping[str, Any], key: str, path: str, *, required: bool = False) -> list[Any]:
    value = require(node, key, path) if required else node.get(key, [])
    if not isinstance(value, list):
        fail(f"{path}.{key}", f"expected a JSON array, got {type(value).__name__}")
    return value


def name(node: Mapping[str, Any], path: str, pattern: re.Pattern[str], limit: int) -> str:
    value = require(node, "Name", path)
    if not isinstance(value, str) or not pattern.fullmatch(value) or len(value) > limit:
        fail(
            f"{path}.Name",
            f"{value!r} is not a valid name (at most {limit} letters, digits, '.', '-', '_', "
            "starting and ending with a letter or digit)",
        )
    return value


def properties(node: Mapping[str, Any], path: str, spec: Mapping[str, Field]) -> dict[str, Any]:
    """Read an entity's Properties by its table; absent keys keep the dataclass (schema) defaults."""
    at = f"{path}.Properties"
    props = object_(node.get("Properties", {}), at, frozenset(spec))
    return {spec[key][0]: spec[key][1](value, f"{at}.{key}") for key, value in props.items()}


def boolean(value: object, path: str) -> bool:
    if not isinstance(value, bool):
        fail(path, f"expected true or false, got {value!r}")
    return value


def count(value: object, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        fail(path, f"expected an integer, got {value!r}")
    if value < 1:
        fail(path, f"must be at least 1, got {value}")
    return value


def string(value: object, path: str) -> str:
    if not isinstance(value, str):
        fail(path, f"expected a string, got {value!r}")
    return value


def entity_ref(value: object, path: str) -> str | None:
    """A forwarding target; the schema writes "none" as an empty string."""
    return string(value, path) or None


def span(low: timedelta, high: timedelta) -> Reader:
    """A reader of ISO 8601 durations within Azure's bounds."""

    def read(value: object, path: str) -> timedelta:
        try:
            duration = parse_duration(string(value, path))
        except ValueError as exc:
            fail(path, str(exc))
        if not low <= duration <= high:
            fail(path, f"{value} is outside Azure's range {low} .. {high}")
        return duration

    return read


def unique(names: list[str], path: str, kind: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name.casefold() in seen:
            fail(path, f"{kind} name {name!r} is used twice (names are case-insensitive)")
        seen.add(name.casefold())
