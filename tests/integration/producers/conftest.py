"""Fixtures: an emulator with a tap on every topic, the F&O and Dataverse twins, settings for producers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandbox.dataverse import RunningDataverse, start_dataverse
from sandbox.fo import FoHandle, start_fo
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
def slow_retry_fo() -> Iterator[FoHandle]:
    """An F&O twin whose event retries span a producer restart."""
    # Retries after 1, 2, 4 and 8 seconds: longer than a producer restart takes, even on a busy machine.
    with start_fo(page_size=500, event_backoff_seconds=1.0) as running:
        yield running
