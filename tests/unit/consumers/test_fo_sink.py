"""The F&O sink: keys in the URL across companies, the version mark in the body; a non-stale change wins."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from urllib.parse import parse_qs

import httpx
import pytest
import pytest_asyncio

from dualbus.consumers import ApplyResult, FoSink, TargetChange, target_changes
from dualbus.d365 import fo_deployed_fields, fo_entities, fo_key_encoded_twice, fo_key_segment
from dualbus.shared.envelope import Envelope, Operation, Origin
from dualbus.shared.errors import PermanentError, TransientError
from dualbus.shared.maps import load_maps
from dualbus.shared.topology import Direction

from .fakes import FakeFo, api_client

MAPS = load_maps()
ROW = "CustomersV3(dataAreaId='USMF',CustomerAccount='C 1')"
ACCOUNT = {
    "msdyn_company": {"cdm_companycode": "USMF"},
    "accountnumber": "C 1",
    "name": "Contoso",
    "customertypecode": 3,
}


@pytest.fixture
def fake():
    return FakeFo()


@pytest_asyncio.fixture
async def sink(fake):
    http, api = api_client(fake)
    yield FoSink(api)
    await http.aclose()


def account(version: int, *, repair: bool = False, operation=Operation.UPDATE, **data) -> TargetChange:
    """The CustomersV3 change a Dataverse account event implies."""
    event = Envelope.for_change(
        origin=Origin.DATAVERSE,
        area="customer",
        entity="accounts",
        key={"msdyn_company": "USMF", "accountnumber": "C 1"},
        operation=operation,
        source_version=version,
        time=datetime.now(UTC),
        data={} if operation is Operation.DELETE else {**ACCOUNT, **data},
        repair_run="r-1" if repair else None,
    )
    changes = target_changes(event, area="customer", direction=Direction.TO_FO, maps=MAPS)
    return next(c for c in changes if c.table_map.name == "customers")


@pytest.mark.asyncio
async def test_a_new_row_is_posted_with_its_keys_and_version_across_companies(sink, fake):
    """POST carries the key fields, the mapped fields and DualbusSourceVersion, with cross-company=true."""
    assert await sink.apply(account(4)) is ApplyResult.APPLIED
    method, path, body, query = fake.writes()[0]
    assert (method, path, query) == ("POST", "CustomersV3", "cross-company=true")
    assert body["dataAreaId"] == "USMF"
    assert body["CustomerAccount"] == "C 1"
    assert body["DualbusSourceVersion"] == 4
    assert not {"ModifiedBy", "ModifiedDateTime"} & set(body)


@pytest.mark.asyncio
async def test_an_existing_row_is_addressed_by_its_keys_in_the_url(sink, fake):
    """Updates go to the row's key path (URL-encoded) with cross-company=true and only what differs."""
    await sink.apply(account(1))
    await sink.apply(account(2, name="Renamed"))
    method, path, body, query = fake.writes()[-1]
    assert (method, path, query) == ("PATCH", ROW, "cross-company=true")
    # The fake's row lacks fields the write digest covers: what the write leaves there is not known.
    assert body == {"OrganizationName": "Renamed", "DualbusSourceVersion": 2, "DualbusWriteDigest": ""}
    # The read before it names the row by its keys in a $filter, across companies, and asks for the keys,
    # the fields the change carries and the version mark only.
    read_method, read_path, _, read_query = fake.requests[-2]
    assert (read_method, read_path) == ("GET", "CustomersV3")
    query = parse_qs(read_query)
    selected = query.pop("$select")[0].split(",")
    assert query == {
        "$filter": ["dataAreaId eq 'USMF' and CustomerAccount eq 'C 1'"],
        "cross-company": ["true"],
    }
    assert selected[:2] == ["dataAreaId", "CustomerAccount"]
    assert selected[-1] == "DualbusSourceVersion"
    assert "OrganizationName" in selected
    assert set(selected) < set(fo_deployed_fields(fo_entities()["CustomersV3"]))


@pytest.mark.asyncio
async def test_a_missing_row_is_an_empty_answer_not_a_failed_request(sink, fake):
    """A row not there yet is read as an empty collection (200): no 404 for a batch to stop at."""
    assert await sink.apply(account(1)) is ApplyResult.APPLIED
    first_read = fake.requests[0]
    assert first_read[0] == "GET"
    assert fake.answers[0] == 200


@pytest.mark.asyncio
async def test_a_dataverse_change_wins_over_an_fo_edit(sink, fake):
    """An edit made in F&O meanwhile is overwritten: no clock or modifier is compared, only the version."""
    await sink.apply(account(1))
    fake.edit(ROW, OrganizationName="edited in F&O")
    assert await sink.apply(account(2, name="from Dataverse")) is ApplyResult.APPLIED
    assert fake.rows[ROW]["OrganizationName"] == "from Dataverse"


@pytest.mark.asyncio
@pytest.mark.parametrize("status", [409, 400])
async def test_a_create_beaten_by_another_writer_is_decided_again_on_that_row(sink, fake, status):
    """Whatever F&O answers a create whose key was taken meanwhile, the row is read again and updated."""
    fake.created_meanwhile = {"dataAreaId": "USMF", "CustomerAccount": "C 1", "OrganizationName": "Theirs"}
    fake.duplicate_status = status
    assert await sink.apply(account(5)) is ApplyResult.APPLIED
    assert [(method, path) for method, path, _, _ in fake.writes()] == [
        ("POST", "CustomersV3"),
        ("PATCH", ROW),
    ]
    assert fake.rows[ROW]["OrganizationName"] == "Contoso"
    assert fake.rows[ROW]["DualbusSourceVersion"] == 5


@pytest.mark.asyncio
async def test_a_refused_create_with_no_row_after_it_stays_refused(sink, fake):
    """A create refused for its values (no row with its key exists after it) is a permanent failure."""
    fake.refuse_posts = 400
    with pytest.raises(PermanentError, match="400 Write failed: a value is not valid"):
        await sink.apply(account(5))
    assert [method for method, _, _, _ in fake.requests] == ["GET", "POST", "GET"]


@pytest.mark.asyncio
async def test_a_version_the_row_holds_is_stale(sink, fake):
    """A change at or below the row's DualbusSourceVersion is skipped; a repair only below it."""
    await sink.apply(account(5))
    assert await sink.apply(account(5, name="x")) is ApplyResult.SKIPPED_STALE
    assert await sink.apply(account(4, name="x")) is ApplyResult.SKIPPED_STALE
    assert await sink.apply(account(4, repair=True, name="x")) is ApplyResult.SKIPPED_STALE
    assert await sink.apply(account(5, repair=True, name="x")) is ApplyResult.APPLIED
    assert fake.rows[ROW]["OrganizationName"] == "x"


@pytest.mark.asyncio
async def test_a_change_of_no_mapped_value_is_unchanged_and_only_marks_its_version(sink, fake):
    """Nothing mapped differs: UNCHANGED, and only DualbusSourceVersion is written, so that base_version
    of the next F&O event shows this Dataverse version was received."""
    await sink.apply(account(1))
    assert await sink.apply(account(2)) is ApplyResult.UNCHANGED
    assert fake.writes()[-1][2] == {"DualbusSourceVersion": 2, "DualbusWriteDigest": ""}


@pytest.mark.asyncio
async def test_a_repair_of_what_the_row_holds_writes_nothing(sink, fake):
    """A repair at the row's own version that finds no drift sends no request at all."""
    await sink.apply(account(3))
    assert await sink.apply(account(3, repair=True)) is ApplyResult.UNCHANGED
    assert len(fake.writes()) == 1


@pytest.mark.asyncio
async def test_deletes_remove_the_row_once(sink, fake):
    """A delete removes the row by its key path; again it finds nothing and is UNCHANGED."""
    await sink.apply(account(1))
    gone = account(2, operation=Operation.DELETE)
    assert await sink.apply(gone) is ApplyResult.APPLIED
    assert await sink.apply(gone) is ApplyResult.UNCHANGED
    assert ("DELETE", ROW) in [w[:2] for w in fake.writes()]


@pytest.mark.asyncio
@pytest.mark.parametrize("operation", [Operation.UPDATE, Operation.DELETE])
async def test_a_key_path_f_and_o_cannot_route_is_refused_not_taken_for_a_missing_row(sink, fake, operation):
    """The web front's 404 names no row: a delete is not counted done, an update is not read again."""
    await sink.apply(account(1))
    fake.unroutable = True
    with pytest.raises(PermanentError, match=r"F&O found no route for .*No route data was found") as refused:
        await sink.apply(account(2, operation=operation, name="Renamed"))
    assert refused.value.reason == "TargetRejected"
    assert len([w for w in fake.writes() if w[0] != "POST"]) == 1  # tried once, not three times


@pytest.mark.asyncio
async def test_a_delete_answered_that_its_row_is_gone_is_unchanged_in_either_form():
    """A DELETE of a row gone since the read counts as done, answered as F&O answers it (400 "No resources
    were found when selecting for update.", sandbox/fo/errors.py has the sources) or as OData would (404)."""
    inner = {"message": "No resources were found when selecting for update.", "type": "", "stacktrace": ""}
    no_row = {"error": {"code": "", "message": "An error has occurred.", "innererror": inner}}
    read = {"dataAreaId": "usmf", "CustomerAccount": "C 1", "DualbusSourceVersion": 1, "@odata.etag": 'W/"1"'}
    for gone in (httpx.Response(400, json=no_row), httpx.Response(404, json={"error": {"message": "none"}})):
        answered: list[str] = []

        def answer(request, gone=gone, answered=answered):
            answered.append(request.method)
            if request.method != "GET":
                return gone
            # There at the first read, gone at the read that checks the answer.
            return httpx.Response(200, json={"value": [read] if answered.count("GET") == 1 else []})

        http, api = api_client(answer)
        assert await FoSink(api).apply(account(2, operation=Operation.DELETE)) is ApplyResult.UNCHANGED
        assert answered == ["GET", "DELETE", "GET"]
        await http.aclose()


@pytest.mark.parametrize("operation", [Operation.DELETE, Operation.UPDATE])
@pytest.mark.asyncio
async def test_a_write_answered_that_its_row_is_gone_while_a_read_finds_it_is_rejected(operation):
    """F&O's 400 says no row the request could select: where a fresh read still finds the row, it is a
    refusal with F&O's reason (TargetRejected), not a row gone. The delete was counted done and lost, the
    update tried again until Service Bus dead-lettered it without F&O's reason."""
    inner = {"message": "No resources were found when selecting for update.", "type": "", "stacktrace": ""}
    no_row = {"error": {"code": "", "message": "An error has occurred.", "innererror": inner}}
    read = {"dataAreaId": "usmf", "CustomerAccount": "C 1", "DualbusSourceVersion": 1, "@odata.etag": 'W/"1"'}
    answered: list[str] = []

    def answer(request):
        answered.append(request.method)
        return (
            httpx.Response(200, json={"value": [read]})
            if request.method == "GET"
            else httpx.Response(400, json=no_row)
        )

    http, api = api_client(answer)
    with pytest.raises(PermanentError, match="No resources were found") as refused:
        await FoSink(api).apply(account(2, operation=operation))
    assert refused.value.reason == "TargetRejected"
    assert answered == ["GET", "DELETE" if operation is Operation.DELETE else "PATCH", "GET"]
    await http.aclose()


@pytest.mark.asyncio
async def test_a_wildcard_read_that_is_sent_the_same_next_link_again_stops():
    """Reading the pages a '*' key matches ends with a TransientError when F&O repeats a next link."""
    link = "https://org.example/data/CustomersV3?$skiptoken=1"
    other = {"dataAreaId": "usmf", "CustomerAccount": "C 1X"}

    def answer(_request):
        return httpx.Response(200, json={"value": [other], "@odata.nextLink": link})

    http, api = api_client(answer)
    starred = dataclasses.replace(account(1), key={"dataAreaId": "USMF", "CustomerAccount": "C*"})
    with pytest.raises(TransientError, match=r"next link .* twice"):
        await FoSink(api).apply(starred)
    await http.aclose()


def test_a_key_path_writes_each_key_as_a_literal_of_its_type():
    """An enum key as Microsoft.Dynamics.DataEntities.<Enum>'<Member>', text quoted and URL-encoded."""
    key = {
        "dataAreaId": "usmf",
        "ContactPersonPartyNumber": "CP 1",
        "AssociatedContactType": "Vendor",
        "AssociatedContactNumber": "V-1",
    }
    assert fo_key_segment(fo_entities()["CDSContactPersonsV2"], key) == (
        "dataAreaId='usmf',ContactPersonPartyNumber='CP%201',"
        "AssociatedContactType=Microsoft.Dynamics.DataEntities.SmmContactPersonCdsAssociatedContactType'Vendor',"
        "AssociatedContactNumber='V-1'"
    )


def test_a_key_path_encodes_twice_what_f_and_o_decodes_before_routing():
    """'/', '\\', '+' and '%' go as %252F, %255C, %252B and %2525; a space, '#' and '?' once; quotes stay."""
    key = {"dataAreaId": "usmf", "CustomerAccount": "A/B\\C+D%E F#G?H'I"}
    assert fo_key_segment(fo_entities()["CustomersV3"], key) == (
        "dataAreaId='usmf',CustomerAccount='A%252FB%255CC%252BD%2525E%20F%23G%3FH''I'"
    )
    customers = fo_entities()["CustomersV3"]
    assert fo_key_encoded_twice(fo_key_segment(customers, key))
    assert not fo_key_encoded_twice(
        fo_key_segment(customers, {"dataAreaId": "usmf", "CustomerAccount": "A B#'?"})
    )
