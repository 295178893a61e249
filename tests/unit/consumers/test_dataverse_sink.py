"""The Dataverse sink: conflict rule, writer id at start-up, no-op skip, key syntax, stale guard."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import httpx
import pytest
import pytest_asyncio
import stamina

from dualbus.consumers import (
    ApplyResult,
    BatchingApi,
    DataverseSink,
    TargetChange,
    target_changes,
)
from dualbus.consumers import _dataverse as dataverse_module
from dualbus.shared.envelope import Envelope, Operation, Origin
from dualbus.shared.errors import LookupMissingError, TransientError
from dualbus.shared.maps import load_maps
from dualbus.shared.topology import Direction

from .fakes import (
    DUALBUS,
    GROUP_ID,
    SOMEONE,
    TERMS_ID,
    USD_ID,
    USMF_ID,
    BatchFront,
    FakeDataverse,
    api_client,
)

MAPS = load_maps()
ACCOUNT = f"accounts(_msdyn_company_value={USMF_ID},accountnumber='C-1')"
CUSTOMER = {
    "dataAreaId": "USMF",
    "CustomerAccount": "C-1",
    "OrganizationName": "Contoso",
    "PartyType": "Organization",
    "CustomerGroupId": "10",
    "SalesCurrencyCode": "USD",
    "PaymentTerms": "Net30",
}


@pytest.fixture(autouse=True)
def no_waits():
    # stamina's testing mode: no waits, and at most 10 attempts (fewer when the policy says so).
    with stamina.set_testing(True, attempts=10, cap=True):
        yield


@pytest.fixture
def fake():
    return FakeDataverse()


@pytest_asyncio.fixture
async def sink(fake):
    http, api = api_client(fake)
    sink = DataverseSink(api)
    yield sink
    await sink.aclose()
    await http.aclose()


def customer(version: int, *, base: int | None = None, operation=Operation.UPDATE, **data) -> TargetChange:
    """The accounts change an F&O customer event implies."""
    event = Envelope.for_change(
        origin=Origin.FO,
        area="customer",
        entity="CustomersV3",
        key={"dataAreaId": "USMF", "CustomerAccount": "C-1"},
        operation=operation,
        source_version=version,
        time=datetime.now(UTC),
        data={} if operation is Operation.DELETE else {**CUSTOMER, **data},
        base_version=base,
    )
    changes = target_changes(event, area="customer", direction=Direction.TO_DATAVERSE, maps=MAPS)
    # A deleted F&O customer may have been a person (contacts) too: only the account matters here.
    return next(c for c in changes if c.table_map.name == "customers")


async def created(sink, fake, *, version: int = 1) -> int:
    """Create the account through the sink; returns the Dataverse row version dualbus's write left."""
    assert await sink.apply(customer(version)) is ApplyResult.APPLIED
    return int(fake.rows[ACCOUNT]["versionnumber"])


@pytest.mark.asyncio
async def test_a_lookup_in_the_key_is_addressed_by_its_lookup_property(sink, fake):
    """accounts is keyed by _msdyn_company_value=<company id>, and lookups bind by the targets' ids."""
    await sink.apply(customer(1))
    method, path, body = fake.writes()[0]
    assert (method, path) == ("PATCH", ACCOUNT)
    assert body["msdyn_company@odata.bind"] == f"/cdm_companies({USMF_ID})"
    assert body["msdyn_customergroupid@odata.bind"] == f"/msdyn_customergroups({GROUP_ID})"
    assert ("GET", f"msdyn_customergroups(_msdyn_company_value={USMF_ID},msdyn_groupid='10')", None) in (
        fake.requests
    )


@pytest.mark.asyncio
async def test_a_lookup_named_by_navigation_is_read_by_its_column(sink, fake):
    """products bind msdyn_CompanyId, whose id reads back as _msdyn_companyid_value: no rebind when equal."""
    path = "products(productnumber='USMFP-1')"
    fake.rows[path] = {
        "_msdyn_companyid_value": USMF_ID,
        "msdyn_productnumber": "P-1",
        "quantitydecimal": 0,
        "versionnumber": 5,
    }
    event = Envelope.for_change(
        origin=Origin.FO,
        area="product",
        entity="CDSReleasedDistinctProducts",
        key={"dataAreaId": "USMF", "ProductNumber": "P-1"},
        operation=Operation.UPDATE,
        source_version=3,
        time=datetime.now(UTC),
        data={"ProductNumber": "P-1"},
    )
    [change] = target_changes(event, area="product", direction=Direction.TO_DATAVERSE, maps=MAPS)
    assert await sink.apply(change) is ApplyResult.UNCHANGED
    assert fake.writes() == []


@pytest.mark.asyncio
async def test_a_concurrent_dataverse_edit_wins_over_the_fo_change(sink, fake):
    """A row edited by someone else after the version F&O last received skips the F&O change as a conflict."""
    seen = await created(sink, fake)
    fake.edit(ACCOUNT, name="theirs")
    assert await sink.apply(customer(2, base=seen, OrganizationName="ours")) is ApplyResult.SKIPPED_CONFLICT
    assert fake.rows[ACCOUNT]["name"] == "theirs"
    assert len(fake.writes()) == 1


@pytest.mark.asyncio
async def test_an_edit_fo_has_seen_does_not_block_the_change(sink, fake):
    """When F&O already received the other user's edit (base_version holds it), the change applies."""
    await created(sink, fake)
    fake.edit(ACCOUNT, name="theirs")
    seen = int(fake.rows[ACCOUNT]["versionnumber"])
    assert await sink.apply(customer(2, base=seen, OrganizationName="ours")) is ApplyResult.APPLIED
    assert fake.rows[ACCOUNT]["name"] == "ours"


@pytest.mark.asyncio
async def test_a_row_last_written_by_dualbus_takes_the_change(sink, fake):
    """A row dualbus itself wrote last is no conflict, however far its version is beyond base_version."""
    await created(sink, fake)
    assert await sink.apply(customer(2, base=0, OrganizationName="again")) is ApplyResult.APPLIED
    assert fake.rows[ACCOUNT]["name"] == "again"


@pytest.mark.asyncio
async def test_an_unknown_base_version_applies(sink, fake):
    """Without base_version the edit's history is unknown, and the change is applied."""
    await created(sink, fake)
    fake.edit(ACCOUNT, name="theirs")
    assert await sink.apply(customer(2, base=None, OrganizationName="ours")) is ApplyResult.APPLIED
    assert fake.rows[ACCOUNT]["name"] == "ours"


@pytest.mark.asyncio
async def test_a_reconcile_repair_is_not_held_back_by_an_unseen_edit(sink, fake):
    """A repair is the operator's choice of the right side: it applies over a Dataverse edit F&O never saw."""
    seen = await created(sink, fake)
    fake.edit(ACCOUNT, name="theirs")
    repair = dataclasses.replace(customer(2, base=seen, OrganizationName="ours"), repair=True)
    assert await sink.apply(repair) is ApplyResult.APPLIED
    assert fake.rows[ACCOUNT]["name"] == "ours"


@pytest.mark.asyncio
async def test_a_delete_racing_an_unseen_edit_is_a_conflict(sink, fake):
    """An F&O delete does not remove a row edited in Dataverse since F&O last heard of it."""
    seen = await created(sink, fake)
    fake.edit(ACCOUNT, name="theirs")
    gone = customer(2, base=seen, operation=Operation.DELETE)
    assert await sink.apply(gone) is ApplyResult.SKIPPED_CONFLICT
    assert ACCOUNT in fake.rows


@pytest.mark.asyncio
async def test_an_older_version_is_stale(sink, fake):
    """A change whose version the row's dualbus_sourceversion already holds is skipped as stale."""
    await created(sink, fake, version=5)
    assert await sink.apply(customer(5, OrganizationName="x")) is ApplyResult.SKIPPED_STALE
    assert await sink.apply(customer(4, OrganizationName="x")) is ApplyResult.SKIPPED_STALE
    assert len(fake.writes()) == 1


@pytest.mark.asyncio
async def test_a_change_of_no_mapped_value_records_only_its_version(sink, fake):
    """Same fields and lookups as the row dualbus wrote last: UNCHANGED, and only the mark is written (the
    Dataverse producer skips dualbus's own writes: nothing travels back to F&O)."""
    await created(sink, fake)
    assert await sink.apply(customer(2)) is ApplyResult.UNCHANGED
    assert fake.writes()[-1][2] == {"dualbus_sourceversion": 2}
    assert fake.rows[ACCOUNT]["dualbus_sourceversion"] == 2


@pytest.mark.asyncio
async def test_an_older_change_after_an_unchanged_newer_one_is_stale(sink, fake):
    """F&O went back to the values dualbus applied (version 3); version 2, dead-lettered then replayed,
    came after it and overwrote the row, since the mark had stayed at 1."""
    await created(sink, fake)
    assert await sink.apply(customer(3)) is ApplyResult.UNCHANGED
    assert await sink.apply(customer(2, OrganizationName="Old name")) is ApplyResult.SKIPPED_STALE
    assert fake.rows[ACCOUNT]["name"] == "Contoso"


@pytest.mark.asyncio
async def test_the_echo_of_someone_elses_edit_writes_nothing(sink, fake):
    """The row holds another user's edit, and F&O's state built on it comes back: no write at all."""
    await created(sink, fake)
    fake.edit(ACCOUNT, name="theirs")
    seen = int(fake.rows[ACCOUNT]["versionnumber"])
    writes = len(fake.writes())
    assert await sink.apply(customer(4, base=seen, OrganizationName="theirs")) is ApplyResult.UNCHANGED
    assert len(fake.writes()) == writes


@pytest.mark.asyncio
async def test_a_real_change_sends_only_what_differs_with_the_version(sink, fake):
    """Only the changed column and the version column travel; unchanged lookups are not rebound."""
    await created(sink, fake)
    await sink.apply(customer(2, OrganizationName="renamed"))
    assert fake.writes()[-1][2] == {"name": "renamed", "dualbus_sourceversion": 2}


@pytest.mark.asyncio
async def test_a_decision_not_to_write_is_confirmed_by_a_fresh_read(sink, fake):
    """The row dualbus wrote last is cached, but an edit made since is read before deciding 'unchanged'."""
    await created(sink, fake)
    fake.edit(ACCOUNT, name="theirs")
    assert await sink.apply(customer(2)) is ApplyResult.APPLIED
    assert fake.rows[ACCOUNT]["name"] == "Contoso"


@pytest.mark.asyncio
async def test_the_writer_id_is_asked_alone_at_start_up(fake):
    """start() learns dualbus's user id with WhoAmI outside any $batch (the fake refuses batches)."""
    http, api = api_client(fake)
    sink = DataverseSink(BatchingApi(api, root="api/data/v9.2"))
    assert await sink.start() == DUALBUS
    assert [r[:2] for r in fake.requests] == [("GET", "WhoAmI")]
    await sink.aclose()
    await http.aclose()


@pytest.mark.asyncio
async def test_no_change_is_applied_while_the_writer_id_is_unknown(sink, fake):
    """WhoAmI failing at start-up leaves the id unknown: apply raises TransientError and writes nothing."""
    fake.whoami_status = 503
    assert await sink.start() is None
    with pytest.raises(TransientError, match="WhoAmI"):
        await sink.apply(customer(1))
    assert [r[1] for r in fake.requests] == ["WhoAmI"] * 5
    fake.whoami_status = 200
    assert await sink.apply(customer(1)) is ApplyResult.APPLIED
    assert sink.writer_id == DUALBUS


@pytest.mark.asyncio
async def test_a_refused_whoami_is_transient_not_a_silent_none(sink, fake):
    """A WhoAmI answered with a client error keeps the id unknown and changes waiting, never unguarded."""
    fake.whoami_status = 404
    with pytest.raises(TransientError, match="WhoAmI answered 404"):
        await sink.apply(customer(1))
    assert fake.writes() == []


@pytest.mark.asyncio
async def test_someone_elses_id_in_another_case_is_still_dualbus(fake):
    """User ids compare without case: Dataverse may spell a GUID in upper case."""
    http, api = api_client(fake)
    sink = DataverseSink(api, writer_id=DUALBUS.upper())
    seen = await created(sink, fake)
    assert await sink.apply(customer(2, base=seen - 1, OrganizationName="n")) is ApplyResult.APPLIED
    assert SOMEONE not in str(fake.rows[ACCOUNT])
    await http.aclose()


def numbered(n: int, version: int = 1) -> TargetChange:
    """The accounts change for F&O customer C-``n``."""
    change = customer(version)
    return dataclasses.replace(change, key={**change.key, "accountnumber": f"C-{n}"})


def account(n: int) -> str:
    return f"accounts(_msdyn_company_value={USMF_ID},accountnumber='C-{n}')"


@pytest.mark.asyncio
async def test_rows_of_a_table_being_filled_are_created_without_a_read(sink, fake):
    """Once the last reads found the rows missing, a new row is created at once: one request, not two."""
    for n in range(40):
        assert await sink.apply(numbered(n)) is ApplyResult.APPLIED
    reads_before = [r for r in fake.requests if r[0] == "GET" and r[1].startswith("accounts(")]
    assert len(reads_before) < 40  # the later rows were not read first
    fake.requests.clear()
    assert await sink.apply(numbered(100)) is ApplyResult.APPLIED
    assert [(method, path) for method, path, _ in fake.requests] == [("PATCH", account(100))]
    assert fake.rows[account(100)]["dualbus_sourceversion"] == 1


@pytest.mark.asyncio
async def test_a_row_that_exists_meanwhile_takes_the_guarded_path(sink, fake):
    """A create-first that finds the row (412) reads it and decides as always: here, stale."""
    for n in range(40):
        await sink.apply(numbered(n))
    fake.rows[account(200)] = {"accountid": "x", "dualbus_sourceversion": 5, "name": "kept"}
    fake.requests.clear()
    assert await sink.apply(numbered(200, version=3)) is ApplyResult.SKIPPED_STALE
    assert [m for m, _, _ in fake.requests] == ["PATCH", "GET"]
    assert fake.rows[account(200)]["name"] == "kept"


@pytest.mark.asyncio
async def test_rows_that_exist_soon_bring_back_the_read_first(sink, fake):
    """After a fill, changes to rows that exist cost a few refused creates, then read first again."""
    for n in range(40):
        await sink.apply(numbered(n))
    for n in range(500, 540):  # rows dualbus did not write (so not remembered), all there
        fake.rows[account(n)] = {"accountid": f"id-{n}", "dualbus_sourceversion": 1, "name": "old"}
    fake.requests.clear()
    writes_before = len(fake.writes())
    for n in range(500, 540):
        assert await sink.apply(numbered(n, version=2)) is ApplyResult.APPLIED
    patches = [r for r in fake.requests if r[0] == "PATCH"]
    refused_creates = len(patches) - (len(fake.writes()) - writes_before)
    first_requests = [m for m, path, _ in fake.requests if path == account(539)]
    assert first_requests[0] == "GET"
    assert len([r for r in fake.requests if r[0] == "GET"]) >= 36
    assert 1 <= refused_creates <= 4


@pytest.mark.asyncio
async def test_a_tombstone_holds_back_a_create_first(sink, fake):
    """A missing row's tombstone is judged before a create-first, as before any create."""
    for n in range(40):
        await sink.apply(numbered(n))
    fake.requests.clear()
    buried = dataclasses.replace(numbered(300, version=2), deleted_version=4)
    assert await sink.apply(buried) is ApplyResult.SKIPPED_STALE
    assert fake.requests == []


@pytest.mark.asyncio
async def test_past_the_bound_the_least_recently_written_row_is_read_again(sink, fake, monkeypatch):
    """The rows kept after their write are bounded: past the bound the least recently written is read before
    its next change, and the rows written since are still changed without a read."""
    monkeypatch.setattr(dataverse_module, "_CACHE_LIMIT", 3)
    for n in range(4):
        assert await sink.apply(numbered(n)) is ApplyResult.APPLIED
    fake.requests.clear()
    for n in (3, 2, 1, 0):
        change = customer(2, OrganizationName=f"again {n}")
        change = dataclasses.replace(change, key={**change.key, "accountnumber": f"C-{n}"})
        assert await sink.apply(change) is ApplyResult.APPLIED
    reads = [path for method, path, _ in fake.requests if method == "GET"]
    assert reads == [account(0)]
    assert fake.rows[account(0)]["name"] == "again 0"


@pytest.mark.asyncio
async def test_a_kept_copy_older_than_what_fo_has_seen_is_read_again_without_a_doomed_write(sink, fake):
    """Someone edited the row after dualbus wrote it, and F&O heard of it (base_version): the copy kept of
    dualbus's write is stale, so the row is read at once instead of written on with an ETag that fails. Here
    F&O sends the edit back (an echo): one read, nothing written."""
    await created(sink, fake)
    fake.edit(ACCOUNT, name="theirs")
    seen = int(fake.rows[ACCOUNT]["versionnumber"])
    assert await sink.apply(customer(2, base=seen, OrganizationName="theirs")) is ApplyResult.UNCHANGED
    patches = [path for method, path, _ in fake.requests if method == "PATCH"]
    assert patches == [ACCOUNT]  # dualbus's create only
    assert ("GET", ACCOUNT, None) in fake.requests


NEW_GROUP_ID = "99999999-0000-0000-0000-000000000010"


@pytest.mark.asyncio
async def test_a_referenced_row_re_created_under_a_new_id_is_bound_by_it_after_one_retry(sink, fake):
    """Customer group 10 deleted and re-created in Dataverse gets a new id; the id the sink cached is answered
    404 (ObjectDoesNotExist): the change fails transiently once and then binds the new id, where it was
    rejected (or taken for a row deleted meanwhile, three times over) before."""
    await created(sink, fake)
    group = f"msdyn_customergroups(_msdyn_company_value={USMF_ID},msdyn_groupid='10')"
    fake.rows[group] = {"msdyn_customergroupid": NEW_GROUP_ID}
    del fake.rows[ACCOUNT]  # the account too, so that its next change binds the group again
    with pytest.raises(TransientError, match="new id"):
        await sink.apply(customer(2))
    assert await sink.apply(customer(2)) is ApplyResult.APPLIED
    assert fake.rows[ACCOUNT]["_msdyn_customergroupid_value"] == NEW_GROUP_ID


@pytest.mark.asyncio
async def test_a_404_with_references_unchanged_is_what_it_was(sink, fake):
    """A delete of a row already gone is still UNCHANGED when the ids it refers to are the same."""
    await created(sink, fake)
    del fake.rows[ACCOUNT]
    assert await sink.apply(customer(2, operation=Operation.DELETE)) is ApplyResult.UNCHANGED


@pytest.mark.asyncio
async def test_a_delete_whose_company_is_gone_is_unchanged_not_an_unresolved_lookup(sink, fake):
    """The row is gone with its company: reading the company's id again finds none, and the delete is
    what it was before, unchanged, rather than a lookup to wait for and dead-letter."""
    await created(sink, fake)
    del fake.rows[ACCOUNT]
    del fake.rows["cdm_companies(cdm_companycode='USMF')"]
    assert await sink.apply(customer(2, operation=Operation.DELETE)) is ApplyResult.UNCHANGED


@pytest.mark.asyncio
async def test_a_delete_whose_company_is_gone_is_unchanged_on_a_consumer_that_never_saw_it(fake):
    """The same on a consumer started after the company went (nothing cached): the key's lookup finds no
    company, and no row can be there under it."""
    http, api = api_client(fake)
    first = DataverseSink(api)
    await created(first, fake)
    await first.aclose()
    del fake.rows[ACCOUNT]
    del fake.rows["cdm_companies(cdm_companycode='USMF')"]
    restarted = DataverseSink(api)
    try:
        assert await restarted.apply(customer(2, operation=Operation.DELETE)) is ApplyResult.UNCHANGED
    finally:
        await restarted.aclose()
        await http.aclose()


NEW_USMF_ID = "99999999-0000-0000-0000-0000000000aa"


@pytest.mark.asyncio
async def test_a_delete_addressed_through_a_re_created_company_finds_its_row_after_one_retry(sink, fake):
    """The company was re-created under a new id and the account lives under it: a delete whose path was
    built from the cached id finds no row, reads the company again, and deletes the row on its retry,
    instead of counting it unchanged and leaving it."""
    await created(sink, fake)
    sink._written.clear()  # the row fell out of the sink's bounded cache; the company's id did not
    fake.rows["cdm_companies(cdm_companycode='USMF')"] = {"cdm_companyid": NEW_USMF_ID}
    moved = ACCOUNT.replace(USMF_ID, NEW_USMF_ID)
    fake.rows[moved] = fake.rows.pop(ACCOUNT)
    with pytest.raises(TransientError, match="new id"):
        await sink.apply(customer(2, operation=Operation.DELETE))
    assert await sink.apply(customer(2, operation=Operation.DELETE)) is ApplyResult.APPLIED
    assert moved not in fake.rows


@pytest.mark.asyncio
async def test_a_date_time_key_part_is_written_as_a_bare_date_time_literal(
    sink: DataverseSink, fake: FakeDataverse
) -> None:
    """msdyn_validfrom is a date-time key column: its literal is bare, as OData reads a date and time; quoted
    it would be text, which no key of the table takes."""
    fake.rows["msdyn_internalorganizationhierarchytypes(msdyn_name='Sales')"] = {
        "msdyn_internalorganizationhierarchytypeid": GROUP_ID
    }
    for party in ("000123", "000001"):
        fake.rows[f"msdyn_internalorganizations(msdyn_partynumber='{party}')"] = {
            "msdyn_internalorganizationid": USD_ID if party == "000123" else TERMS_ID
        }
    key = {"HierarchyType": "Sales", "ChildOrganizationPartyNumber": "000123"}
    dates = {"validFrom": "2024-01-01T00:00:00Z", "validTo": "2154-12-31T23:59:59Z"}
    event = Envelope.for_change(
        origin=Origin.FO,
        area="organisation",
        entity="OrganizationHierarchyPublished",
        key={**key, **dates},
        operation=Operation.CREATE,
        source_version=1,
        time=datetime.now(UTC),
        data={**key, **dates, "ParentOrganizationPartyNumber": "000001"},
    )
    [change] = [
        c
        for c in target_changes(event, area="organisation", direction=Direction.TO_DATAVERSE, maps=MAPS)
        if c.table_map.name == "organisation_hierarchies"
    ]
    assert await sink.apply(change) is ApplyResult.APPLIED
    [(method, path, _)] = fake.writes()
    expected = (
        f"msdyn_internalorganizationhierarchies(_msdyn_hierarchytypeid_value={GROUP_ID},"
        f"_msdyn_childid_value={USD_ID},msdyn_validfrom=2024-01-01T00:00:00Z,msdyn_validto=2154-12-31T23:59:59Z)"
    )
    assert (method, path) == ("PATCH", expected)


def _contact_delete_of_customer(account: str) -> TargetChange:
    """The contacts delete an F&O customer's delete implies (it may have been a person)."""
    event = Envelope.for_change(
        origin=Origin.FO,
        area="customer",
        entity="CustomersV3",
        key={"dataAreaId": "USMF", "CustomerAccount": account},
        operation=Operation.DELETE,
        source_version=2,
        time=datetime.now(UTC),
        data={},
    )
    changes = target_changes(event, area="customer", direction=Direction.TO_DATAVERSE, maps=MAPS)
    return next(c for c in changes if c.table_map.name == "customer_contacts")


@pytest.mark.asyncio
@pytest.mark.parametrize(("sellable", "kept"), [(False, True), (True, False)])
async def test_a_delete_takes_only_a_row_its_map_would_take(sink, fake, sellable, kept):
    """An F&O customer's delete comes to every map of the area: a vendor contact whose contact person id
    is that customer's account number was deleted with it. Only a customer contact is."""
    change = _contact_delete_of_customer("000042")
    path = (await sink._refs.row_path(change.table_map, change.key)).removeprefix("api/data/v9.2/")
    fake.rows[path] = {
        "msdyn_contactpersonid": "000042",
        "msdyn_contactforvendor": not sellable,
        "msdyn_sellable": sellable,
        "dualbus_sourceversion": 1,
        "_modifiedby_value": DUALBUS,
        "versionnumber": 5,
    }
    result = await sink.apply(change)
    assert (path in fake.rows) is kept
    assert result is (ApplyResult.UNCHANGED if kept else ApplyResult.APPLIED)


@pytest.mark.asyncio
async def test_a_rows_read_and_its_lookups_ids_travel_in_one_batch(fake):
    """The account's read and the ids of its customer group, currency and payment terms go out together,
    in one $batch (one turn of the pace), not one after another; the write that follows is unchanged."""
    front = BatchFront(fake)
    http, api = api_client(front)
    sink = DataverseSink(BatchingApi(api, root="api/data/v9.2"), writer_id=DUALBUS)
    assert await sink.apply(customer(1)) is ApplyResult.APPLIED
    group = f"msdyn_customergroups(_msdyn_company_value={USMF_ID},msdyn_groupid='10')"
    terms = f"msdyn_paymentterms(_msdyn_company_value={USMF_ID},msdyn_name='Net30')"
    assert front.batches == [
        ["GET cdm_companies(cdm_companycode='USMF')"],
        [
            f"GET {ACCOUNT}",
            f"GET {group}",
            "GET transactioncurrencies(isocurrencycode='USD')",
            f"GET {terms}",
        ],
        [f"PATCH {ACCOUNT}"],
    ]
    [(_, _, body)] = fake.writes()
    assert body["msdyn_customergroupid@odata.bind"] == f"/msdyn_customergroups({GROUP_ID})"
    assert body["transactioncurrencyid@odata.bind"] == f"/transactioncurrencies({USD_ID})"
    await sink.aclose()
    await http.aclose()


@pytest.mark.asyncio
async def test_a_lookup_read_failing_beside_the_row_read_fails_the_change_as_before(fake):
    """A lookup target found missing beside the row's read is not read again where it is bound, which
    raises: the change waits for it (LookupMissingError), and nothing is written."""
    del fake.rows["transactioncurrencies(isocurrencycode='USD')"]
    http, api = api_client(BatchFront(fake))
    sink = DataverseSink(BatchingApi(api, root="api/data/v9.2"), writer_id=DUALBUS)
    with pytest.raises(LookupMissingError, match="transactioncurrencies"):
        await sink.apply(customer(1))
    assert fake.writes() == []
    currency = ("GET", "transactioncurrencies(isocurrencycode='USD')", None)
    assert fake.requests.count(currency) == 1
    await sink.aclose()
    await http.aclose()


@pytest.mark.asyncio
async def test_a_deletes_row_read_and_its_companys_id_read_again_travel_in_one_batch(fake):
    """A delete reads its company's id again beside the row (the row may be there under a company made
    again with a new id), not after finding it missing: one turn of the pace."""
    front = BatchFront(fake)
    http, api = api_client(front)
    sink = DataverseSink(BatchingApi(api, root="api/data/v9.2"), writer_id=DUALBUS)
    await created(sink, fake)
    await sink.aclose()
    # Another consumer (no copy of the row kept), its company's id known from an earlier change.
    deleting = DataverseSink(BatchingApi(api, root="api/data/v9.2"), writer_id=DUALBUS)
    await deleting.apply(
        dataclasses.replace(customer(2), key={"msdyn_company": "USMF", "accountnumber": "C-9"})
    )
    front.batches.clear()
    assert await deleting.apply(customer(3, operation=Operation.DELETE)) is ApplyResult.APPLIED
    assert front.batches == [
        [f"GET {ACCOUNT}", "GET cdm_companies(cdm_companycode='USMF')"],
        [f"DELETE {ACCOUNT}"],
    ]
    await deleting.aclose()
    await http.aclose()


@pytest.mark.asyncio
async def test_a_write_sent_with_an_id_another_change_replaced_meanwhile_goes_again(fake):
    """Customer group 10 re-created under a new id; another change reads the new id while this write, sent
    with the old one, is under way. Its 404 then finds the cached id already new (unchanged by its own read
    again), but the write went with the old: it fails transiently and binds the new id on its retry,
    where it was rejected as TargetRejected before."""
    replaced = False

    async def another_change_refreshes_first(request: httpx.Request) -> httpx.Response:
        nonlocal replaced
        if request.method == "PATCH" and not replaced:
            replaced = True
            group = next(b for b in customer(2).lookups if b.table == "msdyn_customergroups")
            assert await sink._refs.refreshed(customer(2).table_map, {}, (group,)) is True
        return fake(request)

    http, api = api_client(another_change_refreshes_first)
    sink = DataverseSink(api, writer_id=DUALBUS)
    replaced = True  # the first create goes through as it is
    await created(sink, fake)
    replaced = False
    fake.rows[f"msdyn_customergroups(_msdyn_company_value={USMF_ID},msdyn_groupid='10')"] = {
        "msdyn_customergroupid": NEW_GROUP_ID
    }
    del fake.rows[ACCOUNT]  # the account too, so that its next change binds the group again
    with pytest.raises(TransientError, match="replaced meanwhile"):
        await sink.apply(customer(2))
    assert await sink.apply(customer(2)) is ApplyResult.APPLIED
    assert fake.rows[ACCOUNT]["_msdyn_customergroupid_value"] == NEW_GROUP_ID
    await http.aclose()


@pytest.mark.asyncio
async def test_a_delete_whose_row_is_there_is_not_held_back_by_a_failed_read_of_its_company(fake):
    """A delete reads its company's id again beside its row; when that read fails (503) and the row is
    there, the delete goes on: the new id was only needed for a row not found."""
    failing = False

    def company_reads_fail(request: httpx.Request) -> httpx.Response:
        if failing and "cdm_companies" in request.url.path:
            return httpx.Response(503, json={"error": {"message": "busy"}})
        return fake(request)

    http, api = api_client(company_reads_fail)
    sink = DataverseSink(api, writer_id=DUALBUS)
    await created(sink, fake)
    sink._written.clear()  # no kept copy: the delete reads its row
    failing = True
    assert await sink.apply(customer(2, operation=Operation.DELETE)) is ApplyResult.APPLIED
    assert ACCOUNT not in fake.rows
    await http.aclose()
