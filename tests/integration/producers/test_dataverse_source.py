"""The Dataverse source against the Dataverse twin and the emulator, over sockets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from dualbus.producers.dataverse import DataverseSource
from dualbus.producers.errors import SourceError
from dualbus.producers.events import parse_time
from dualbus.producers.initial_sync import run_initial_sync
from dualbus.producers.runner import open_context
from dualbus.producers.settings import ProducerOptions
from dualbus.sandbox.dataverse import RunningDataverse, start_dataverse
from dualbus.shared.envelope import Operation, Origin
from dualbus.shared.errors import ConfigError
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


@asynccontextmanager
async def _customer_source(
    emulator: Emulator, dataverse: RunningDataverse, tmp_path: Path
) -> AsyncIterator[tuple[httpx.Client, DataverseSource]]:
    """A maker's client on a Dataverse that has company USMF, and the source of the company and customer
    areas (dualbus's own user named, so nothing is asked of WhoAmI)."""
    settings = settings_for(emulator, tmp_path, dataverse=dataverse)
    options = ProducerOptions(own_users=OWN_USERS)
    with _client(dataverse, "maker") as maker:
        assert maker.post("cdm_companies", json={"cdm_companycode": "USMF", "cdm_name": "Contoso"}).is_success
        async with open_context(Origin.DATAVERSE, settings, options, areas=["company", "customer"]) as ctx:
            yield maker, DataverseSource(ctx.api, ctx.tables, ctx.publisher, ctx.store, ctx.echo)


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
    async with _customer_source(emulator, dataverse, tmp_path) as (maker, source):
        # Companies go from F&O to Dataverse only (shared/maps/data/company.json): nothing to snapshot.
        assert await source.poll_once() == 0
        created = maker.post("accounts", json=_account("C-1", "Fabrikam"))
        assert created.is_success, created.text
        account = created.headers["OData-EntityId"]
        await source.poll_once()
        assert maker.patch(account, json={"name": "Fabrikam Ltd"}).is_success
        await source.poll_once()
        assert maker.delete(account).is_success
        await source.poll_once()
    events = drain_tap(emulator.connection_string, ["company", "customer"], expect=3)
    accounts = [e for e in events if e.entity == "accounts"]
    assert [e.operation for e in accounts] == [Operation.CREATE, Operation.UPDATE, Operation.DELETE]
    assert accounts[0].key == {"msdyn_company": "USMF", "accountnumber": "C-1"}
    assert accounts[1].data["name"] == "Fabrikam Ltd"
    assert accounts[1].data["msdyn_company"] == {"cdm_companycode": "USMF"}
    assert accounts[0].source_version < accounts[1].source_version < accounts[2].source_version
    assert accounts[2].company == "USMF"


@pytest.mark.asyncio
async def test_echo_of_a_dualbus_write_is_not_republished(
    emulator: Emulator, dataverse: RunningDataverse, tmp_path: Path
) -> None:
    """A row dualbus's own user wrote last is skipped and counted; a later edit by a person is published."""
    settings = settings_for(emulator, tmp_path, dataverse=dataverse)
    # No user configured: the producer asks Dataverse who it is (WhoAmI), the user dualbus writes as.
    options = ProducerOptions()
    with _client(dataverse, "maker") as maker, _client(dataverse, "dualbus") as pipeline:
        assert maker.post("cdm_companies", json={"cdm_companycode": "USMF", "cdm_name": "Contoso"}).is_success
        async with open_context(Origin.DATAVERSE, settings, options, areas=["company", "customer"]) as ctx:
            source = DataverseSource(ctx.api, ctx.tables, ctx.publisher, ctx.store, ctx.echo)
            await source.poll_once()
            created = pipeline.post("accounts", json=_account("C-2", "Written by dualbus"))
            assert created.is_success, created.text
            assert await source.poll_once() == 0
            assert source.skipped_echo == 1
            assert maker.patch(
                created.headers["OData-EntityId"], json={"name": "Edited by a person"}
            ).is_success
            assert await source.poll_once() == 1
    # Everything published is on the tap by now; read until it is quiet, so that an echo would show.
    accounts = [
        e for e in drain_tap(emulator.connection_string, ["company", "customer"]) if e.entity == "accounts"
    ]
    assert [e.data["name"] for e in accounts] == ["Edited by a person"]


@pytest.mark.asyncio
async def test_expired_token_resnapshots_without_losing_a_delete(
    emulator: Emulator, dataverse: RunningDataverse, tmp_path: Path
) -> None:
    """After an invalid delta token the source re-reads everything and publishes the delete it missed."""
    settings = settings_for(emulator, tmp_path, dataverse=dataverse)
    options = ProducerOptions(own_users=OWN_USERS)
    with _client(dataverse, "maker") as maker:
        assert maker.post("cdm_companies", json={"cdm_companycode": "USMF", "cdm_name": "Contoso"}).is_success
        kept = maker.post("accounts", json=_account("C-3", "Kept"))
        gone = maker.post("accounts", json=_account("C-4", "Gone"))
        assert kept.is_success
        assert gone.is_success
        async with open_context(Origin.DATAVERSE, settings, options, areas=["company", "customer"]) as ctx:
            source = DataverseSource(ctx.api, ctx.tables, ctx.publisher, ctx.store, ctx.echo)
            assert await source.poll_once() == 2
            # A token the service no longer honours, as after the change-retention period.
            ctx.store.put("dataverse.delta.customers", "999999999!01/01/2020 00:00:00")
            assert maker.delete(gone.headers["OData-EntityId"]).is_success
            await source.poll_once()
            assert ctx.store.get("dataverse.delta.customers") != "999999999!01/01/2020 00:00:00"
    # Accounts: two creates, the re-read of C-3 and the delete of C-4.
    events = drain_tap(emulator.connection_string, ["company", "customer"], expect=4)
    deletes = [e for e in events if e.operation is Operation.DELETE]
    assert [e.key["accountnumber"] for e in deletes] == ["C-4"]
    assert {e.key["accountnumber"] for e in events if e.entity == "accounts"} == {"C-3", "C-4"}


@pytest.mark.asyncio
async def test_initial_sync_from_dataverse_leaves_the_token_to_continue_from(
    emulator: Emulator, dataverse: RunningDataverse, tmp_path: Path
) -> None:
    """An initial sync publishes every row and stores the delta token, so the producer then sees only news."""
    settings = settings_for(emulator, tmp_path, dataverse=dataverse)
    options = ProducerOptions(own_users=OWN_USERS)
    with _client(dataverse, "maker") as maker:
        assert maker.post("cdm_companies", json={"cdm_companycode": "USMF", "cdm_name": "Contoso"}).is_success
        for number in range(5):
            assert maker.post("accounts", json=_account(f"I-{number}", "Initial")).is_success
        async with open_context(Origin.DATAVERSE, settings, options, areas=["company", "customer"]) as ctx:
            summary = await run_initial_sync(ctx)
            assert summary.records == 5
            source = DataverseSource(ctx.api, ctx.tables, ctx.publisher, ctx.store, ctx.echo)
            assert await source.poll_once() == 0
            assert maker.post("accounts", json=_account("I-NEW", "After")).is_success
            assert await source.poll_once() == 1
    events = drain_tap(emulator.connection_string, ["company", "customer"], expect=6)
    assert {e.key.get("accountnumber") for e in events if e.entity == "accounts"} == {
        *(f"I-{n}" for n in range(5)),
        "I-NEW",
    }


@pytest.mark.asyncio
async def test_initial_sync_from_dataverse_goes_layer_by_layer(
    emulator: Emulator, dataverse: RunningDataverse, tmp_path: Path
) -> None:
    """Currencies are published and awaited before the customers that look them up, as an F&O sync does:
    the layers were ignored, and F&O refused customers whose currency it did not hold yet."""
    settings = settings_for(emulator, tmp_path, dataverse=dataverse)
    options = ProducerOptions(own_users=OWN_USERS)
    customers_synced_before: dict[tuple[str, ...], bool] = {}
    with _client(dataverse, "maker") as maker:
        assert maker.post("cdm_companies", json={"cdm_companycode": "USMF", "cdm_name": "Contoso"}).is_success
        assert maker.post("accounts", json=_account("L-1", "Layered")).is_success
        async with open_context(Origin.DATAVERSE, settings, options, areas=["currency", "customer"]) as ctx:

            async def before_layer(previous: Sequence[str]) -> None:
                synced = ctx.store.get("initial.dataverse.customers.*") is not None
                customers_synced_before[tuple(previous)] = synced

            summary = await run_initial_sync(
                ctx, layers=[["currency"], ["customer"]], before_layer=before_layer
            )
    # Awaited once, after the currencies and before any customer was published.
    assert customers_synced_before == {("currency",): False}
    assert summary.records >= 1
    with pytest.raises(ConfigError, match="takes no companies"):
        async with open_context(Origin.DATAVERSE, settings, options, areas=["customer"]) as ctx:
            await run_initial_sync(ctx, companies=["USMF"])


async def _early_in_a_second() -> None:
    # modifiedon has whole seconds: what the test does next then falls within one second of the clock.
    fraction = datetime.now(UTC).microsecond / 1e6
    if not 0.05 <= fraction <= 0.4:
        await asyncio.sleep((1.1 - fraction) % 1)


@pytest.mark.asyncio
async def test_a_change_is_timed_from_the_previous_read_when_modifiedon_is_earlier(
    emulator: Emulator, dataverse: RunningDataverse, tmp_path: Path
) -> None:
    """An event's time is the earliest its change can have been made: not before the previous read of its
    table started (the change would have been read then), nor before ``modifiedon``; a delete has only the
    former. Both are before the change, so the latency measured from them is never understated."""
    async with _customer_source(emulator, dataverse, tmp_path) as (maker, source):
        await source.poll_once()
        await _early_in_a_second()
        read_before_create = datetime.now(UTC)
        await source.poll_once()
        created = maker.post("accounts", json=_account("T-1", "Timed"))
        assert created.is_success, created.text
        created_by = datetime.now(UTC)
        modified_on = parse_time(maker.get(created.headers["OData-EntityId"]).json()["modifiedon"])
        await _early_in_a_second()
        read_before_delete = datetime.now(UTC)
        await source.poll_once()
        assert maker.delete(created.headers["OData-EntityId"]).is_success
        deleted_by = datetime.now(UTC)
        await source.poll_once()
    events = drain_tap(emulator.connection_string, ["company", "customer"], expect=2)
    create, delete = (e for e in events if e.entity == "accounts")
    # Made in the second its previous read started in (as nearly always), the create's modifiedon is
    # earlier than that read, and only the read's start tells the change's time closer.
    assert read_before_create <= create.time <= created_by
    assert create.time >= modified_on
    assert read_before_delete <= delete.time <= deleted_by


@pytest.mark.asyncio
async def test_a_table_without_change_tracking_fails_alone_and_says_why(
    emulator: Emulator, tmp_path: Path
) -> None:
    """A synced table whose change tracking is off is refused (ChangeTrackingNotEnabledForEntity): the round
    fails naming it, not as an expired token to re-read, and the other tables keep their tokens."""
    with start_dataverse(clients=DV_CLIENTS, limits=None, untracked_tables=frozenset({"accounts"})) as twin:
        settings = settings_for(emulator, tmp_path, dataverse=twin)
        options = ProducerOptions(own_users=OWN_USERS)
        async with open_context(Origin.DATAVERSE, settings, options, areas=["company", "customer"]) as ctx:
            source = DataverseSource(ctx.api, ctx.tables, ctx.publisher, ctx.store, ctx.echo)
            with pytest.raises(SourceError, match="isn't enabled for change tracking"):
                await source.poll_once()
            assert ctx.store.get("dataverse.delta.customers") is None
            assert ctx.store.get("dataverse.delta.customer_groups") is not None
