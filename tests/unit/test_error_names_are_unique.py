"""An error class's name means one thing across our packages, and so does ``Envelope``.

Two classes of one name (say the pipeline's ``ThrottledError`` and a twin's) make a reader, a log line or an
``except`` clause pick the wrong one without noticing.
"""

from __future__ import annotations

import ast
from collections import defaultdict

from tests.unit.sources import SHIPPED, python_files


def guarded_classes(source: str) -> list[str]:
    """Names of the classes ``source`` defines that must be unique: errors and the envelope."""
    return [
        node.name
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ClassDef) and (node.name.endswith("Error") or node.name == "Envelope")
    ]


def test_each_error_name_is_defined_once() -> None:
    """No error class name (nor Envelope) is defined in two modules."""
    where: dict[str, list[str]] = defaultdict(list)
    for relative, path in python_files(SHIPPED):
        for name in guarded_classes(path.read_text(encoding="utf-8")):
            where[name].append(relative)
    assert {name: paths for name, paths in where.items() if len(paths) > 1} == {}


def test_the_check_sees_errors_and_the_envelope() -> None:
    """Error classes and Envelope count; other classes do not."""
    source = "class ThrottledError(Exception): ...\nclass Envelope: ...\nclass Route: ...\n"
    assert guarded_classes(source) == ["ThrottledError", "Envelope"]
