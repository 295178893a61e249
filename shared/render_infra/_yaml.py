"""A tiny, deterministic YAML emitter for the manifests dualbus renders (no YAML dependency needed).

It writes block mappings and sequences and writes every string as a JSON string, which YAML 1.2 reads as
a double-quoted scalar (https://yaml.org/spec/1.2.2/#731-double-quoted-style): no value can be mistaken
for a number, a boolean or null (the "Norway problem"), whatever it holds.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import TypeAlias

__all__ = ["Node", "dump_documents", "dump_yaml"]

Node: TypeAlias = "Mapping[str, Node] | Sequence[Node] | str | int | bool | None"

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_./-]*$")
_INDENT = "  "


def dump_yaml(node: Node) -> str:
    """One YAML document for a tree of mappings, sequences and scalars, ending with a newline."""
    return "\n".join(_lines(node, 0)) + "\n"


def dump_documents(nodes: Sequence[Node]) -> str:
    """Several YAML documents in one stream, each opened with ``---``."""
    return "".join(f"---\n{dump_yaml(node)}" for node in nodes)


def _scalar(value: str | int | bool | None) -> str:
    # json.dumps gives true/false/null, plain integers and escaped double-quoted strings: all valid YAML.
    return json.dumps(value, ensure_ascii=False)


def _key(key: str) -> str:
    return key if _PLAIN_KEY.match(key) else _scalar(key)


def _is_block(node: Node) -> bool:
    return isinstance(node, Mapping | list | tuple) and len(node) > 0


def _lines(node: Node, depth: int) -> list[str]:
    pad = _INDENT * depth
    if isinstance(node, Mapping):
        return _mapping_lines(node, depth) if node else [f"{pad}{{}}"]
    if isinstance(node, list | tuple):
        return _sequence_lines(node, depth) if node else [f"{pad}[]"]
    if isinstance(node, str | int | bool) or node is None:
        return [f"{pad}{_scalar(node)}"]
    raise TypeError(f"cannot write {type(node).__name__} as YAML")


def _mapping_lines(node: Mapping[str, Node], depth: int) -> list[str]:
    pad = _INDENT * depth
    lines: list[str] = []
    for key, value in node.items():
        if _is_block(value):
            lines.append(f"{pad}{_key(key)}:")
            lines.extend(_lines(value, depth + 1))
        else:
            lines.append(f"{pad}{_key(key)}: {_lines(value, 0)[0]}")
    return lines


def _sequence_lines(node: Sequence[Node], depth: int) -> list[str]:
    pad = _INDENT * depth
    lines: list[str] = []
    for item in node:
        if not _is_block(item):
            lines.append(f"{pad}- {_lines(item, 0)[0]}")
            continue
        # The first line of a nested block sits after the dash; the rest keep the block's indentation.
        first, *rest = _lines(item, depth + 1)
        lines.append(f"{pad}- {first.lstrip()}")
        lines.extend(rest)
    return lines
