"""The Dataverse source against the Dataverse twin and the emulator, over sockets."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from producers.dataverse import DataverseSource
from producers.runner import open_context
from producers.settings import ProducerOptions
from sandbox.dataverse import RunningDataverse
from shared.envelope import Operation, Origin
from tests.integration.producers.support import (
    DV_CLIENTS,
    OWN_USERS,
    Emulator,
    drain_tap,
    settings_for,
)

pytestmark = pytest.mark.integration


def _client(twin: RunningDataverse, client_id: str) -> httpx.Client:
    token = httpx.post(
        twin.token_url,
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": DV_CLIENTS[client_id],
            "scope": twin.scope,
        },
    ).json()["access_token"]
    return httpx.Client(base_url=twin.api_url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def _account(number: str, name: str) -> dict[str, object]:
    return {
        "accountnumber": number,
        "name": name,
        "customertypecode": 3,
        "msdyn_company@odata.bind": "cdm_companies(cdm_companycode='USMF')",
    }


@pytest.mark.asyncio
async def test_creates_updates_and_deletes_are_published(
    emulator: Emulator, dataverse: RunningDataverse, tmp_path: Path
) -> None:
    """A create, an update and a delete in Dataverse each reach the customer topic as full-state events."""
    settings = settings_for(emulator, tmp_path, dataverse=dataverse)
    options = ProducerOptions(own_users=OWN_USERS)
    with _client(dataverse, "maker") as maker:
        assert maker.post("cdm_companies", json={"cdm_companycode": "USMF", "cdm_name": "Contoso"}).is_success
        async with open_context(Origin.DATAVERSE, settings, options, areas=["company", "customer"]) as ctx:
            source = DataverseSource(ctx.api, ctx.tables, ctx.publisher, ctx.store, ctx.echo)
            assert await source.poll_once() == 1  # the snapshot: the company
            created = maker.post("accounts", json=_account("C-1", "Fabrikam"))
            assert created.is_success, created.text
            account = created.headers["OData-EntityId"]
            await source.poll_once()
            assert maker.patch(account, json={"name": "Fabrikam Ltd"}).is_success
            await source.poll_once()
            assert maker.delete(account).is_success
            await source.poll_once()
    events = drain_tap(emulator.connection_string, ["company", "customer"], expect=4)
    accounts = [e for e in events if e.entity == "accounts"]
    assert [e.operation for e in accounts] == [Operation.CREATE, Operation.UPDATE, Operation.DELETE]
    assert accounts[0].key == {"msdyn_company": "USMF", "accountnumber": "C-1"}
    assert accounts[1].data["name"] == "Fabrikam Ltd"
    assert accounts[1].data["msdyn_company"] == {"cdm_companycode": "USMF"}
    assert accounts[0].source_version < accounts[1].source_version < accounts[2].source_version
    assert accounts[2].company == "USMF"
