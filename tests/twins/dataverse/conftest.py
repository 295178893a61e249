"""Fixtures for the Dataverse twin's tests: a running twin over loopback HTTP and authenticated clients."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from dualbus.sandbox.dataverse import RunningDataverse
from tests.twins.dataverse.support import client_for, entity_id, start


@pytest.fixture
def twin() -> Iterator[RunningDataverse]:
    with start(limits=None) as running:
        yield running


@pytest.fixture
def client(twin: RunningDataverse) -> Iterator[httpx.Client]:
    with client_for(twin) as http:
        yield http


@pytest.fixture
def company(client: httpx.Client) -> str:
    """The id of company USMF, created fresh."""
    response = client.post("cdm_companies", json={"cdm_companycode": "USMF", "cdm_name": "Contoso USA"})
    assert response.status_code == 204
    return entity_id(response)
