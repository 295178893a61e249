"""Each outside library is reached through one module of ours, which translates its exceptions.

``BOUNDARIES`` maps a library's import name to the only modules allowed to import it (paths from the
repository root). Putting another library behind a boundary is one line here. The check reads every Python
file of the shipped packages and the benchmarks with ``ast``, so an import inside a function or under
``TYPE_CHECKING`` counts as much as one at the top.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# The packages linked into dualbus/ (see "Layout" in the README): imported as dualbus.<name>, never bare.
LINKED = ("d365", "shared", "producers", "consumers", "sandbox")
SCANNED = (*LINKED, "dualbus", "bench")

BOUNDARIES: dict[str, frozenset[str]] = {
    "azure.identity": frozenset({"shared/identity.py"}),
}


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


def offenders(library: str, allowed: frozenset[str], root: Path = ROOT) -> list[str]:
    """Files (relative paths) outside ``allowed`` that import ``library``."""
    found = []
    for package in SCANNED:
        for path in sorted((root / package).rglob("*.py")):
            relative = path.relative_to(root).as_posix()
            modules = imported_modules(path.read_text(encoding="utf-8"))
            if relative not in allowed and any(reaches(m, library) for m in modules):
                found.append(relative)
    return found


@pytest.mark.parametrize("library", sorted(BOUNDARIES))
def test_only_the_boundary_module_imports_the_library(library: str) -> None:
    """No module but the library's boundary imports it."""
    assert offenders(library, BOUNDARIES[library]) == []


@pytest.mark.parametrize("library", sorted(BOUNDARIES))
def test_the_boundary_module_exists_and_imports_the_library(library: str) -> None:
    """The allowed module really is the one using the library (a renamed boundary must update the list)."""
    for allowed in BOUNDARIES[library]:
        modules = imported_modules((ROOT / allowed).read_text(encoding="utf-8"))
        assert any(reaches(m, library) for m in modules), allowed


@pytest.mark.parametrize(
    "line",
    [
        "import azure.identity",
        "import azure.identity.aio as ai",
        "from azure.identity.aio import ManagedIdentityCredential",
        "from azure import identity",
        "def f():\n    from azure.identity import DefaultAzureCredential\n",
    ],
)
def test_a_stray_import_is_caught(tmp_path: Path, line: str) -> None:
    """The check fails on each way of writing the import, wherever in a file it sits."""
    stray = tmp_path / "consumers" / "stray.py"
    stray.parent.mkdir()
    stray.write_text(f"from __future__ import annotations\n{line}\n")
    assert offenders("azure.identity", BOUNDARIES["azure.identity"], tmp_path) == ["consumers/stray.py"]


def test_a_similar_name_is_not_the_library(tmp_path: Path) -> None:
    """``azure.identity_extras`` or ``azure.servicebus`` is not ``azure.identity``."""
    other = tmp_path / "shared" / "bus.py"
    other.parent.mkdir()
    other.write_text("import azure.identity_extras\nfrom azure.servicebus import ServiceBusClient\n")
    assert offenders("azure.identity", BOUNDARIES["azure.identity"], tmp_path) == []


def _bare_imports(root: Path) -> list[str]:
    found = []
    for folder in (*SCANNED, "tests"):
        for path in sorted((root / folder).rglob("*.py")):
            modules = imported_modules(path.read_text(encoding="utf-8"))
            if any(reaches(m, name) for m in modules for name in LINKED):
                found.append(path.relative_to(root).as_posix())
    return found


def test_our_packages_are_imported_through_dualbus_alone() -> None:
    """An install holds only ``dualbus``: ``import shared`` works in the repository and nowhere else."""
    assert _bare_imports(ROOT) == []


def test_a_bare_import_of_ours_is_caught(tmp_path: Path) -> None:
    """``from shared.bus import x`` is caught; ``from dualbus.shared.bus import x`` is the way."""
    for folder in (*SCANNED, "tests"):
        (tmp_path / folder).mkdir()
    (tmp_path / "tests" / "test_x.py").write_text("from shared.bus import bus_errors\n")
    (tmp_path / "bench" / "ok.py").write_text("from dualbus.shared.bus import bus_errors\n")
    assert _bare_imports(tmp_path) == ["tests/test_x.py"]
