"""Our Python sources, read as text, for the tests that check rules of the code itself with ``ast``.

The packages linked into dualbus/ (see "Layout" in the README) are read once, through their own folders:
``Path.rglob`` does not follow dualbus/'s links to them.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from pathlib import Path

__all__ = ["LINKED", "ROOT", "SHIPPED", "imported_modules", "python_files", "reaches"]

ROOT = Path(__file__).resolve().parents[2]
# Imported as dualbus.<name>, never bare.
LINKED = ("d365", "shared", "producers", "consumers", "sandbox")
# What an install carries.
SHIPPED = (*LINKED, "dualbus")


def python_files(folders: Iterable[str], root: Path = ROOT) -> Iterator[tuple[str, Path]]:
    """Each Python file below ``folders``, with its path relative to ``root``, in a stable order."""
    for folder in folders:
        for path in sorted((root / folder).rglob("*.py")):
            yield path.relative_to(root).as_posix(), path


def imported_modules(source: str) -> Iterator[str]:
    """Every module name an import statement in ``source`` brings in (``from a import b`` gives a and a.b)."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def reaches(module: str, library: str) -> bool:
    """Whether importing ``module`` is importing ``library`` (itself or one of its submodules)."""
    return module == library or module.startswith(library + ".")
