"""Scheduling across xdist workers: the files that take a minute or more start first.

With ``--dist loadfile`` a file runs on one worker from start to end; started last, a long one would keep
the run going alone after the others finished. Files marked ``long`` are moved to the front of the
collection, and ``--no-loadscope-reorder`` (pyproject.toml) keeps that order when the work is handed out.
"""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests of ``long`` files first, each group in its collected order."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)
