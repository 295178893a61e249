"""Sandbox twin benchmarks; prints one JSON document with a section per twin.

Run: ``python -m bench.twins`` (or ``python bench/twins.py``). Named ``twins``, not ``sandbox``: run as a
script, a ``bench/sandbox.py`` would shadow the ``sandbox`` package for every bench beside it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

if __package__ in {None, ""}:  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._dataverse_bench import run_dataverse_bench

# Each section is one twin's figures; a new twin adds its entry here.
SECTIONS: dict[str, Callable[[], dict[str, Any]]] = {
    "dataverse": run_dataverse_bench,
}


def main() -> None:
    """Run every section and print the figures as JSON."""
    figures = {name: run() for name, run in SECTIONS.items()}
    print(orjson.dumps(figures, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
