"""Scheduling across xdist workers: the files that take a minute or more start first; tests that sleep
for minutes by design run only when asked for.

With ``--dist loadfile`` a file runs on one worker from start to end; started last, a long one would keep
the run going alone after the others finished. Files marked ``long`` are moved to the front of the
collection, and ``--no-loadscope-reorder`` (pyproject.toml) keeps that order when the work is handed out.

Tests marked ``sleeps`` wait out minutes that are not theirs to shorten (a published sample's own sleeps):
more than the whole suite's budget on one worker, so they are deselected unless ``--with-sleeps`` is given.
"""

from __future__ import annotations

import pytest

_WITH_SLEEPS = "--with-sleeps"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(_WITH_SLEEPS, action="store_true", help="also run the tests marked sleeps")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests of ``long`` files first, each group in its collected order; ``sleeps`` tests only if asked."""
    if not config.getoption(_WITH_SLEEPS):
        sleeping = [item for item in items if item.get_closest_marker("sleeps") is not None]
        if sleeping:
            config.hook.pytest_deselected(items=sleeping)
            items[:] = [item for item in items if item.get_closest_marker("sleeps") is None]
    items.sort(key=lambda item: item.get_closest_marker("long") is None)
