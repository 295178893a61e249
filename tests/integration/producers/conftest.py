"""Fixtures: an emulator with a tap on every topic, the F&O and Dataverse twins, settings for producers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dualbus.sandbox.dataverse import RunningDataverse, start_dataverse
from dualbus.sandbox.fo import FoHandle, start_fo
from tests.integration.producers.support import DV_CLIENTS, Emulator, running_emulator


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with running_emulator() as running:
        yield running


@pytest.fixture
def dataverse() -> Iterator[RunningDataverse]:
    with start_dataverse(clients=DV_CLIENTS, limits=None) as running:
        yield running


@pytest.fixture
def fo() -> Iterator[FoHandle]:
    with start_fo(page_size=500, event_backoff_seconds=0.05) as running:
        yield running


@pytest.fixture
def paged_fo() -> Iterator[FoHandle]:
    """An F&O twin answering three rows a page, so that a scan follows next links."""
    with start_fo(page_size=3) as running:
        yield running
