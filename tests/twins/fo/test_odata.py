"""The F&O twin's OData surface over real HTTP: keys with dataAreaId, company scope, paging, writes.

Behaviour as documented for finance and operations OData (default company, ``cross-company=true``,
server-driven paging with ``@odata.nextLink``):
https://learn.microsoft.com/dynamics365/fin-ops-core/dev-itpro/data-entities/odata
"""

from __future__ import annotations

import httpx
import pytest

from dualbus.d365 import fo_entities
from dualbus.sandbox.fo import ENTITIES, FoHandle
from tests.twins.fo.conftest import PAGE_SIZE, customer

KEY = "CustomersV3(dataAreaId='usmf',CustomerAccount='US-001')"


def _seed(client: httpx.Client, accounts: list[tuple[str, str]]) -> None:
    for company, account in accounts:
        response = client.post("/data/CustomersV3", json=customer(account, company))
        assert response.status_code == 201, response.text


def test_post_then_get_by_key_with_data_area_id(client: httpx.Client) -> None:
    """A created customer is read back by its two-part key, company id answered in lower case."""
    created = client.post("/data/CustomersV3", json=customer("US-001", "USMF"))
    assert created.status_code == 201
    assert created.headers["Location"].endswith(KEY)
    row = client.get(f"/data/{KEY}").json()
    assert row["CustomerAccount"] == "US-001"
    assert row["dataAreaId"] == "usmf"
    assert row["@odata.context"].endswith("$metadata#CustomersV3/$entity")


def test_default_company_only_without_cross_company(client: httpx.Client) -> None:
    """A query sees the caller's default company; cross-company=true sees every company."""
    _seed(client, [("usmf", "US-001"), ("demf", "DE-001"), ("usmf", "US-002")])
    own = client.get("/data/CustomersV3").json()["value"]
    everything = client.get("/data/CustomersV3", params={"cross-company": "true"}).json()["value"]
    assert {r["CustomerAccount"] for r in own} == {"US-001", "US-002"}
    assert {r["dataAreaId"] for r in everything} == {"usmf", "demf"}


def test_other_company_row_needs_cross_company(client: httpx.Client) -> None:
    """A key in another company is not found unless the request says cross-company=true."""
    _seed(client, [("demf", "DE-001")])
    path = "/data/CustomersV3(dataAreaId='demf',CustomerAccount='DE-001')"
    assert client.get(path).status_code == 404
    assert client.get(path, params={"cross-company": "true"}).json()["CustomerAccount"] == "DE-001"


@pytest.mark.usefixtures("client")  # its reference rows in both companies
def test_configured_default_company_per_client(fo: FoHandle) -> None:
    """A client mapped to DEMF sees DEMF rows by default and creates into DEMF without a dataAreaId."""
    with fo.client("workload") as workload:
        body = customer("DE-009")
        del body["dataAreaId"]
        assert workload.post("/data/CustomersV3", json=body).json()["dataAreaId"] == "demf"
        assert [r["CustomerAccount"] for r in workload.get("/data/CustomersV3").json()["value"]] == ["DE-009"]


def test_paging_follows_next_link_to_the_end(client: httpx.Client) -> None:
    """More rows than a page are served in pages linked by @odata.nextLink, none lost or repeated."""
    _seed(client, [("usmf", f"US-{i:03}") for i in range(PAGE_SIZE * 2 + 1)])
    seen: list[str] = []
    url: str | None = "/data/CustomersV3"
    pages = 0
    while url:
        body = client.get(url).json()
        seen += [r["CustomerAccount"] for r in body["value"]]
        url, pages = body.get("@odata.nextLink"), pages + 1
    assert pages == 3
    assert seen == sorted(f"US-{i:03}" for i in range(PAGE_SIZE * 2 + 1))


def test_filter_select_orderby_top_skip(client: httpx.Client) -> None:
    """$filter with and/or and ranges, $select, $orderby desc, $top and $skip combine as in OData."""
    _seed(client, [("usmf", f"US-{i:03}") for i in range(6)])
    params = {
        "$filter": "(CustomerAccount ge 'US-001' and CustomerAccount le 'US-004')"
        " or CustomerAccount eq 'US-005'",
        "$select": "CustomerAccount,dataAreaId",
        "$orderby": "CustomerAccount desc",
        "$top": "2",
        "$skip": "1",
    }
    rows = client.get("/data/CustomersV3", params=params).json()["value"]
    assert all(row.pop("@odata.etag").startswith('W/"') for row in rows)
    assert rows == [
        {"CustomerAccount": "US-004", "dataAreaId": "usmf"},
        {"CustomerAccount": "US-003", "dataAreaId": "usmf"},
    ]


def test_filter_on_data_area_and_a_decimal(client: httpx.Client) -> None:
    """Filtering across companies on dataAreaId and a numeric range returns only the matching rows."""
    _seed(client, [("usmf", "US-001"), ("demf", "DE-001")])
    client.post("/data/CustomersV3", json=customer("US-002", CreditLimit=5000))
    params = {"cross-company": "true", "$filter": "dataAreaId eq 'usmf' and CreditLimit gt 1000"}
    rows = client.get("/data/CustomersV3", params=params).json()["value"]
    assert [r["CustomerAccount"] for r in rows] == ["US-002"]


def test_a_filter_naming_every_key_reads_that_row_in_the_callers_scope(client: httpx.Client) -> None:
    """A $filter naming a row by all its keys (any case, any order) answers it with its ETag, or nothing."""
    _seed(client, [("usmf", "US-001"), ("demf", "DE-001")])
    by_keys = "CustomerAccount eq 'us-001' and dataAreaId eq 'USMF'"
    params = {"cross-company": "true", "$filter": by_keys}
    rows = client.get("/data/CustomersV3", params=params).json()["value"]
    assert [(r["dataAreaId"], r["CustomerAccount"]) for r in rows] == [("usmf", "US-001")]
    assert rows[0]["@odata.etag"]
    missing = "dataAreaId eq 'usmf' and CustomerAccount eq 'US-404'"
    answer = client.get("/data/CustomersV3", params={"cross-company": "true", "$filter": missing})
    assert (answer.status_code, answer.json()["value"]) == (200, [])
    # Another company's row stays out of a caller's default-company scope, by keys as by any filter.
    other = "dataAreaId eq 'demf' and CustomerAccount eq 'DE-001'"
    assert client.get("/data/CustomersV3", params={"$filter": other}).json()["value"] == []


def test_patch_changes_fields_and_exposes_no_modified_stamp(fo: FoHandle, client: httpx.Client) -> None:
    """A PATCH by another application changes the fields; no ModifiedDateTime or ModifiedBy appears."""
    _seed(client, [("usmf", "US-001")])
    with fo.client("workload") as other:
        response = other.patch(f"/data/{KEY}", json={"CreditLimit": 5000}, params={"cross-company": "true"})
    assert response.status_code == 204
    after = client.get(f"/data/{KEY}").json()
    assert after["CreditLimit"] == 5000
    assert not {"ModifiedDateTime", "ModifiedBy"} & set(after)


def test_every_schema_entity_set_is_served_and_no_other(client: httpx.Client) -> None:
    """Each entity set of d365/fo answers a query, and a name outside them is not found."""
    for name in fo_entities():
        assert client.get(f"/data/{name}").status_code == 200, name
    assert set(ENTITIES) == set(fo_entities())
    assert client.get("/data/OrganizationHierarchiesPublished").status_code == 404


def test_query_options_naming_unknown_properties_are_refused(client: httpx.Client) -> None:
    """$select, $filter and $orderby on a property the type lacks answer 400 with the OData library's text."""
    for params in ({"$select": "ModifiedDateTime"}, {"$filter": "ModifiedBy eq 'x'"}, {"$orderby": "Nope"}):
        response = client.get("/data/CustomersV3", params=params)
        assert response.status_code == 400
        inner = response.json()["error"]["innererror"]["message"]
        assert inner.startswith("Could not find a property named '")
        assert inner.endswith("' on type 'Microsoft.Dynamics.DataEntities.CustomerV3'.")


def test_delete_by_key(client: httpx.Client) -> None:
    """A deleted row is gone: reading it answers 404, deleting it again F&O's 400 (test_missing_rows.py)."""
    _seed(client, [("usmf", "US-001")])
    assert client.delete(f"/data/{KEY}").status_code == 204
    assert client.get(f"/data/{KEY}").status_code == 404
    assert client.delete(f"/data/{KEY}").status_code == 400


def test_duplicate_key_is_a_conflict(client: httpx.Client) -> None:
    """A second create with the same key, in any letter case, is refused with 409."""
    _seed(client, [("usmf", "US-001")])
    assert client.post("/data/CustomersV3", json=customer("us-001")).status_code == 409


def test_key_fields_cannot_change_and_unknown_sets_are_404(client: httpx.Client) -> None:
    """A PATCH that moves a key is refused, and an unknown entity set answers 404."""
    _seed(client, [("usmf", "US-001")])
    assert client.patch(f"/data/{KEY}", json={"CustomerAccount": "US-999"}).status_code == 400
    assert client.get("/data/NoSuchEntities").status_code == 404


def test_enum_literal_in_filter(client: httpx.Client) -> None:
    """An F&O enum literal (Namespace.Type'Value') filters by the value's name."""
    _seed(client, [("usmf", "US-001")])
    client.post("/data/CustomersV3", json=customer("US-003", OnHoldStatus="All"))
    flt = "OnHoldStatus eq Microsoft.Dynamics.DataEntities.CustVendorBlocked'All'"
    rows = client.get("/data/CustomersV3", params={"$filter": flt}).json()["value"]
    assert [r["CustomerAccount"] for r in rows] == ["US-003"]


@pytest.mark.parametrize(
    ("flt", "types"),
    [
        ("OnHoldStatus eq 'All'", "'Microsoft.Dynamics.DataEntities.CustVendorBlocked' and 'Edm.String'"),
        (
            "OnHoldStatus ne Microsoft.Dynamics.DataEntities.NoYes'Yes'",
            "'Microsoft.Dynamics.DataEntities.CustVendorBlocked' and 'Microsoft.Dynamics.DataEntities.NoYes'",
        ),
        ("CustomerAccount eq Microsoft.Dynamics.DataEntities.NoYes'Yes'", "'Edm.String' and"),
        ("CreditLimit gt '5'", "'Edm.Decimal' and 'Edm.String'"),
    ],
)
def test_a_literal_not_of_its_fields_type_is_refused(client: httpx.Client, flt: str, types: str) -> None:
    """F&O binds $filter to its model: an enum field takes only its own enum literal, text only text."""
    response = client.get("/data/CustomersV3", params={"$filter": flt})
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert "A binary operator with incompatible types was detected" in message
    assert types in message


_BLOCKED = "Microsoft.Dynamics.DataEntities.CustVendorBlocked"
_NO_YES = "Microsoft.Dynamics.DataEntities.NoYes"


@pytest.mark.parametrize(
    ("flt", "types", "kind"),
    [
        ("OnHoldStatus eq CustomerAccount", f"'{_BLOCKED}' and 'Edm.String'", "Equal"),
        ("CustomerAccount ne OnHoldStatus", f"'Edm.String' and '{_BLOCKED}'", "NotEqual"),
        ("CreditLimitIsMandatory eq OnHoldStatus", f"'{_NO_YES}' and '{_BLOCKED}'", "Equal"),
        ("CreditLimit lt AddressValidFrom", "'Edm.Decimal' and 'Edm.DateTimeOffset'", "LessThan"),
        ("PaymentTermsBaseDays ge CustomerGroupId", "'Edm.Int32' and 'Edm.String'", "GreaterThanOrEqual"),
        ("'5' lt CreditLimit", "'Edm.String' and 'Edm.Decimal'", "LessThan"),
        ("'All' eq OnHoldStatus", f"'Edm.String' and '{_BLOCKED}'", "Equal"),
    ],
)
def test_operands_of_incompatible_types_are_refused_left_first(
    client: httpx.Client, flt: str, types: str, kind: str
) -> None:
    """Two properties are bound as a property and a literal are: operands of types the OData library does
    not promote to one are refused with its message, naming the left operand's type, then the right's."""
    response = client.get("/data/CustomersV3", params={"$filter": flt})
    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        "A binary operator with incompatible types was detected. "
        f"Found operand types {types} for operator kind '{kind}'."
    )


@pytest.mark.parametrize(
    "flt",
    [
        "OrganizationName eq NameAlias",  # text and text
        "PersonAnniversaryYear lt PrimaryContactFaxRecordId",  # Edm.Int32 promoted to Edm.Int64
        "CreditLimit ge PaymentTermsBaseDays",  # Edm.Int32 promoted to Edm.Decimal
        "CreditLimitIsMandatory eq IsFuelSurchargeApplied",  # an enum and the same enum
        "'Org C-1' eq OrganizationName",  # a literal on the left
    ],
)
def test_operands_the_library_promotes_to_one_type_compare(client: httpx.Client, flt: str) -> None:
    """Properties of one type, or of numeric types the library promotes to one, are compared row by row."""
    one = {"NameAlias": "Org C-1", "PersonAnniversaryYear": 1, "PrimaryContactFaxRecordId": 2}
    one |= {"CreditLimit": 30, "PaymentTermsBaseDays": 30, "CreditLimitIsMandatory": "Yes"}
    other = {"NameAlias": "Other", "PersonAnniversaryYear": 3, "PrimaryContactFaxRecordId": 2}
    other |= {"CreditLimit": 10, "PaymentTermsBaseDays": 30, "CreditLimitIsMandatory": "No"}
    for account, fields in (("C-1", one), ("C-2", other)):
        body = customer(account) | {"IsFuelSurchargeApplied": "Yes", **fields}
        assert client.post("/data/CustomersV3", json=body).status_code == 201
    response = client.get("/data/CustomersV3", params={"$filter": flt})
    assert response.status_code == 200, response.text
    assert [row["CustomerAccount"] for row in response.json()["value"]] == ["C-1"]


def test_a_syntax_error_is_answered_before_a_type_error(client: httpx.Client) -> None:
    """The library parses the whole filter before it binds it to the model: a later syntax error wins."""
    response = client.get("/data/CustomersV3", params={"$filter": "CreditLimit gt '5' and (CustomerAccount"})
    assert response.status_code == 400
    assert "incompatible types" not in response.json()["error"]["message"]


def test_an_enum_is_compared_with_an_enum_property_with_eq_and_ne_only(client: httpx.Client) -> None:
    """F&O's rule for enums holds when both sides are enum properties: gt is refused, even of one enum."""
    flt = "CreditLimitIsMandatory gt IsFuelSurchargeApplied"
    refused = client.get("/data/CustomersV3", params={"$filter": flt})
    assert refused.status_code == 400
    assert "eq and ne only" in refused.json()["error"]["message"]


def test_an_enum_key_in_a_path_is_an_enum_literal(client: httpx.Client) -> None:
    """A key path takes the literals $filter takes: an enum key as <namespace>.<Enum>'<member>'."""
    assert client.post("/data/OrganizationHierarchyTypes", json={"Name": "Security org"}).status_code == 201
    purpose = {"HierarchyPurpose": "Security", "HierarchyType": "Security org"}
    assert client.post("/data/OrganizationHierarchyPurposes", json=purpose).status_code == 201
    enum = "Microsoft.Dynamics.DataEntities.HierarchyPurpose'Security'"
    typed = client.get(
        f"/data/OrganizationHierarchyPurposes(HierarchyPurpose={enum},HierarchyType='Security org')"
    )
    assert typed.json()["HierarchyType"] == "Security org"
    untyped = "HierarchyPurpose='Security',HierarchyType='Security org'"
    refused = client.get(f"/data/OrganizationHierarchyPurposes({untyped})")
    assert refused.status_code == 400
    assert "HierarchyPurpose" in refused.json()["error"]["message"]


def test_an_enum_literal_naming_no_member_is_refused(client: httpx.Client) -> None:
    """An enum literal of the right type but no member of it is a bad request, not an empty answer."""
    bogus = "Microsoft.Dynamics.DataEntities.CustVendorBlocked'Bogus'"
    refused = client.get("/data/CustomersV3", params={"$filter": f"OnHoldStatus eq {bogus}"})
    assert refused.status_code == 400
    assert f"The string '{bogus}' is not a valid enumeration type constant." in refused.text


def test_an_enum_is_compared_with_eq_and_ne_only(client: httpx.Client) -> None:
    """F&O's documentation: the operations enums support are eq and ne; gt on one is refused."""
    enum = "Microsoft.Dynamics.DataEntities.CustVendorBlocked'All'"
    assert client.get("/data/CustomersV3", params={"$filter": f"OnHoldStatus ne {enum}"}).status_code == 200
    refused = client.get("/data/CustomersV3", params={"$filter": f"OnHoldStatus gt {enum}"})
    assert refused.status_code == 400
    assert "eq and ne only" in refused.json()["error"]["message"]


def test_an_enum_orders_by_its_members_place(client: httpx.Client) -> None:
    """$orderby on an enum follows its values (the metadata's order), not the members' names."""
    assert client.post("/data/OrganizationHierarchyTypes", json={"Name": "T"}).status_code == 201
    for purpose in ("Security", "NotSet", "ExpenseControl"):  # places 8, 0 and 2 of HierarchyPurpose
        body = {"HierarchyPurpose": purpose, "HierarchyType": "T"}
        assert client.post("/data/OrganizationHierarchyPurposes", json=body).status_code == 201
    rows = client.get("/data/OrganizationHierarchyPurposes", params={"$orderby": "HierarchyPurpose"}).json()
    assert [r["HierarchyPurpose"] for r in rows["value"]] == ["NotSet", "ExpenseControl", "Security"]


def test_a_created_rows_location_reads_it_back(client: httpx.Client) -> None:
    """The Location of a created row is its key path in typed literals, and reading it finds the row."""
    assert client.post("/data/OrganizationHierarchyTypes", json={"Name": "Security org"}).status_code == 201
    purpose = {"HierarchyPurpose": "Security", "HierarchyType": "Security org"}
    location = client.post("/data/OrganizationHierarchyPurposes", json=purpose).headers["Location"]
    assert "HierarchyPurpose=Microsoft.Dynamics.DataEntities.HierarchyPurpose'Security'" in location
    assert client.get(location).json()["HierarchyPurpose"] == "Security"


def test_a_date_time_key_is_read_from_its_bare_literal(client: httpx.Client) -> None:
    """A date-time key is written bare in a key path and matches the row's instant."""
    assert client.post("/data/OrganizationHierarchyTypes", json={"Name": "Org"}).status_code == 201
    row = {
        "HierarchyType": "Org",
        "ChildOrganizationName": "Child",
        "validFrom": "2024-01-01T00:00:00Z",
        "validTo": "2154-12-31T23:59:59Z",
    }
    location = client.post("/data/OrganizationHierarchyPublished", json=row).headers["Location"]
    key = (
        "HierarchyType='Org',ChildOrganizationName='Child',"
        "validFrom=2024-01-01T00:00:00Z,validTo=2154-12-31T23:59:59Z"
    )
    assert f"({key})" in location.replace("%3A", ":")
    assert (
        client.get(f"/data/OrganizationHierarchyPublished({key})").json()["ChildOrganizationName"] == "Child"
    )
    quoted = key.replace("=2024-01-01T00:00:00Z", "='2024-01-01T00:00:00Z'")
    assert client.get(f"/data/OrganizationHierarchyPublished({quoted})").status_code == 400


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/data/CustomersV3", {"$filter": "CreditLimit gt 0 and AddressValidTo gt 2024-02-30T00:00:00Z"}),
        (
            (
                "/data/OrganizationHierarchyPublished(HierarchyType='Org',ChildOrganizationName='C',"
                "validFrom=2024-02-30T00:00:00Z,validTo=2154-12-31T23:59:59Z)"
            ),
            {},
        ),
    ],
)
def test_a_date_time_that_is_no_date_is_a_bad_request(
    client: httpx.Client, path: str, params: dict[str, str]
) -> None:
    """February 30th has a date-time's shape and is none: 400, not a server error."""
    response = client.get(path, params=params)
    assert response.status_code == 400
    assert "'2024-02-30T00:00:00Z' is not a valid Edm.DateTimeOffset literal" in response.text


def test_if_match_with_a_stale_etag_is_412(client: httpx.Client) -> None:
    """A PATCH or DELETE naming an ETag the row no longer has is refused with 412; the current one works."""
    _seed(client, [("usmf", "US-001")])
    stale = client.get(f"/data/{KEY}").json()["@odata.etag"]
    assert (
        client.patch(f"/data/{KEY}", json={"CreditLimit": 1}, headers={"If-Match": stale}).status_code == 204
    )
    assert (
        client.patch(f"/data/{KEY}", json={"CreditLimit": 2}, headers={"If-Match": stale}).status_code == 412
    )
    assert client.delete(f"/data/{KEY}", headers={"If-Match": stale}).status_code == 412
    current = client.get(f"/data/{KEY}").json()
    assert current["CreditLimit"] == 1
    assert current["@odata.etag"] != stale
    assert client.delete(f"/data/{KEY}", headers={"If-Match": current["@odata.etag"]}).status_code == 204


@pytest.mark.parametrize("top", [None, 2, 4, 7])
@pytest.mark.parametrize("orderby", ["CustomerAccount", "dataAreaId,CustomerAccount", "OrganizationName"])
def test_a_keyset_page_is_what_the_whole_sorted_answer_says(
    client: httpx.Client, orderby: str, top: int | None
) -> None:
    """Read in key order and cut at the page, or filtered and sorted whole, a page is the same rows."""
    accounts = ["b-7", "A-1", "c-3", "B-2", "a-9", "C-5", "b-1", "A-4"]
    _seed(client, [("usmf", account) for account in accounts] + [("demf", "A-0")])
    params = {"$filter": "CustomerAccount gt 'A-1'", "$orderby": orderby}
    if top is not None:
        params["$top"] = str(top)
    seen: list[str] = []
    url: str | None = "/data/CustomersV3"
    while url:
        body = client.get(url, params=params if url == "/data/CustomersV3" else None).json()
        seen += [r["CustomerAccount"] for r in body["value"]]
        url = body.get("@odata.nextLink")
    counted = client.get("/data/CustomersV3", params={**params, "$count": "true"}).json()
    wanted = sorted(
        (a for a in accounts if a.casefold() > "a-1"),
        key=(lambda a: f"Org {a}".casefold()) if orderby == "OrganizationName" else str.casefold,
    )
    assert seen == wanted[:top]
    assert counted["@odata.count"] == len(wanted)


def test_a_company_keyset_page_across_companies_is_what_the_whole_answer_says(client: httpx.Client) -> None:
    """An initial sync's page of one company, read from its bound in key order, equals the full answer."""
    accounts = {"usmf": ["b-7", "A-1", "c-3", "B-2"], "demf": ["a-9", "C-5", "b-1", "A-4", "a-2"]}
    _seed(client, [(company, a) for company, names in accounts.items() for a in names])
    for company, after in (
        ("demf", None),
        ("demf", "a-4"),
        ("demf", "B-1"),
        ("usmf", "A-1"),
        ("demf", "c-5"),
    ):
        keyset = f" and ((CustomerAccount gt '{after}'))" if after else ""
        params = {
            "cross-company": "true",
            "$filter": f"(dataAreaId eq '{company}'){keyset}",
            "$orderby": "CustomerAccount",
            "$top": "2",
        }
        seen = [r["CustomerAccount"] for r in client.get("/data/CustomersV3", params=params).json()["value"]]
        counted = client.get("/data/CustomersV3", params={**params, "$count": "true"}).json()["value"]
        wanted = sorted(
            (a for a in accounts[company] if after is None or a.casefold() > after.casefold()),
            key=str.casefold,
        )
        assert seen == wanted[:2], (company, after)
        assert [r["CustomerAccount"] for r in counted] == wanted[:2]


def test_groups_of_keys_joined_by_or_read_those_rows_in_key_order(
    fo: FoHandle, client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``(keys) or (keys) ...``, as a client reads back a batch of data events' rows, answers each row once,
    in key order, leaves out a key without a row, and keeps the caller's company scope; the rows are looked
    up by key, not found by reading the whole table."""
    _seed(client, [("usmf", "US-001"), ("usmf", "US-002"), ("usmf", "US-003"), ("demf", "DE-001")])
    store = fo.twin.store
    scans: list[str] = []
    scan = store.row_views

    def counted(entity: str) -> list[dict[str, object]]:
        scans.append(entity)
        return scan(entity)

    monkeypatch.setattr(store, "row_views", counted)
    groups = " or ".join(
        f"(dataAreaId eq '{company}' and CustomerAccount eq '{account}')"
        for company, account in [
            ("usmf", "US-003"),
            ("demf", "DE-001"),
            ("usmf", "us-001"),
            ("usmf", "US-404"),
            ("usmf", "US-003"),
        ]
    )
    every = client.get("/data/CustomersV3", params={"cross-company": "true", "$filter": groups})
    rows = every.json()["value"]
    assert [(r["dataAreaId"], r["CustomerAccount"]) for r in rows] == [
        ("demf", "DE-001"),
        ("usmf", "US-001"),
        ("usmf", "US-003"),
    ]
    scoped = client.get("/data/CustomersV3", params={"$filter": groups}).json()["value"]
    assert [r["CustomerAccount"] for r in scoped] == ["US-001", "US-003"]
    assert scans == []
    client.get("/data/CustomersV3", params={"$filter": "CreditLimit eq 5"})
    assert scans == ["CustomersV3"]


def test_a_star_in_a_text_literal_compared_with_eq_is_a_wildcard(client: httpx.Client) -> None:
    """F&O implements "contains" as a wildcard: ``eq '*retail*'`` matches any text around, without regard to
    case, whether the filter names a whole key, a company's keyset page or any field."""
    _seed(
        client, [("usmf", "US-001"), ("usmf", "US-002"), ("usmf", "XUS-1"), ("usmf", "US*"), ("demf", "DE-1")]
    )

    def accounts(filter_: str, **extra: str) -> list[str]:
        params: dict[str, str] | None = {"cross-company": "true", "$filter": filter_, **extra}
        found: list[str] = []
        url: str | None = "/data/CustomersV3"
        while url:
            answer = client.get(url, params=params)
            assert answer.status_code == 200, answer.text
            found += [r["CustomerAccount"] for r in answer.json()["value"]]
            url, params = answer.json().get("@odata.nextLink"), None
        return sorted(found)

    assert accounts("CustomerAccount eq 'us*'") == ["US*", "US-001", "US-002"]
    assert accounts("CustomerAccount eq '*US*'") == ["US*", "US-001", "US-002", "XUS-1"]
    assert accounts("OrganizationName eq 'Org *-1'") == ["DE-1", "XUS-1"]
    # Every key named, as a client reads one row back: the star still widens the match.
    assert accounts("dataAreaId eq 'usmf' and CustomerAccount eq 'US*'") == ["US*", "US-001", "US-002"]
    assert accounts("(dataAreaId eq 'us*')", **{"$orderby": "CustomerAccount", "$top": "2"}) == [
        "US*",
        "US-001",
    ]
