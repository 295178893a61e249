"""Tests import our own modules plainly: a broken module of ours must fail the suite, not skip a test.

``pytest.importorskip`` is for optional outside libraries; on one of our modules it turns a broken import
into a quiet skip.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def importorskips_of_ours(source: str) -> list[str]:
    """The module names of ours that ``source`` hands to ``pytest.importorskip``."""
    return [
        str(node.args[0].value)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "importorskip"
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and str(node.args[0].value).split(".")[0] in {"dualbus", "tests"}
    ]


def test_no_test_skips_on_a_module_of_ours() -> None:
    """No test file asks importorskip for a dualbus module."""
    offenders = {
        path.relative_to(TESTS).as_posix(): names
        for path in sorted(TESTS.rglob("*.py"))
        if (names := importorskips_of_ours(path.read_text(encoding="utf-8")))
    }
    assert offenders == {}


def test_an_importorskip_of_ours_is_caught() -> None:
    """The check sees an importorskip of our module and leaves an outside library's alone."""
    source = 'import pytest\nx = pytest.importorskip("dualbus.sandbox.servicebus.config")\n'
    assert importorskips_of_ours(source) == ["dualbus.sandbox.servicebus.config"]
    assert importorskips_of_ours('import pytest\npytest.importorskip("playwright")\n') == []
