"""The Python examples in the docs import what an install has: ``dualbus.*`` and its dependencies.

The repository keeps its parts in top-level folders (``sandbox/``, ``shared/``, ...), which import from the
repository's root but not after ``pip install``: an example that names them fails for a user.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

_ROOT = Path(__file__).resolve().parents[2]
_FIRST_PARTY = {path.name for path in _ROOT.iterdir() if (path / "__init__.py").is_file()} - {"dualbus"}
_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)
_IMPORT = re.compile(
    r"^\s*(?:from\s+(?P<module>[\w.]+)\s+import\s+(?P<names>[\w, ]+)|import\s+(?P<plain>[\w.]+))"
)


def _imports() -> list[tuple[str, str, list[str]]]:
    found = []
    for doc in [_ROOT / "README.md", *sorted((_ROOT / "docs").glob("*.md"))]:
        for block in _BLOCK.findall(doc.read_text(encoding="utf-8")):
            for line in block.splitlines():
                if (match := _IMPORT.match(line)) is None:
                    continue
                module = match["module"] or match["plain"]
                names = [n.strip() for n in (match["names"] or "").split(",") if n.strip()]
                found.append((doc.name, module, names))
    return found


def test_the_docs_have_python_examples_that_import() -> None:
    assert _imports(), "no import found in the docs' python blocks: the pattern no longer matches them"


@pytest.mark.parametrize(("doc", "module", "names"), _imports())
def test_an_import_in_the_docs_names_an_installed_module_and_what_it_has(
    doc: str, module: str, names: list[str]
) -> None:
    top = module.split(".", maxsplit=1)[0]
    assert top not in _FIRST_PARTY, f"{doc}: {module} is a repository folder; an install has dualbus.{module}"
    imported = importlib.import_module(module)
    missing = [name for name in names if not hasattr(imported, name)]
    assert not missing, f"{doc}: {module} has no {', '.join(missing)}"
