"""The shipped maps' changes are accepted by the Dataverse twin, and its rows map back to F&O unchanged."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import httpx
import pytest

from dualbus.d365 import dataverse_tables
from dualbus.sandbox.dataverse import start_dataverse
from dualbus.shared.maps import (
    MapSet,
    Scalar,
    entity_path,
    expand_lookups,
    load_maps,
    resolved_body,
    to_dataverse,
    to_fo,
)

MAPS = load_maps()
CLIENTS = {"dualbus": "pipeline-secret"}
# F&O rows in initial-sync order: what a row looks up is written before it.
ROWS: list[tuple[str, dict[str, object]]] = [
    ("company", {"LegalEntityId": "USMF", "Name": "Contoso Entertainment System USA"}),
    ("currency", {"CurrencyCode": "USD", "Name": "US Dollar", "Symbol": "$"}),
    (
        "payment_terms",
        {"dataAreaId": "USMF", "Name": "Net30", "Description": "Net 30 days", "NumberOfDays": 30},
    ),
    (
        "customer_groups",
        {"dataAreaId": "USMF", "CustomerGroupId": "30", "Description": "Wholesale", "PaymentTermId": "Net30"},
    ),
    ("vendor_groups", {"dataAreaId": "USMF", "VendorGroupId": "10", "Description": "Parts"}),
    (
        "customers",
        {
            "dataAreaId": "USMF",
            "CustomerAccount": "US-001 A",
            "OrganizationName": "Fabrikam, Inc.",
            "CustomerGroupId": "30",
            "SalesCurrencyCode": "USD",
            "PaymentTerms": "Net30",
            "CreditLimit": 2500.5,
            "OnHoldStatus": "Invoice",
        },
    ),
    (
        "vendors",
        {
            "dataAreaId": "USMF",
            "VendorAccountNumber": "V-100",
            "VendorOrganizationName": "Litware",
            "VendorPartyType": "Organization",
            "VendorGroupId": "10",
            "CurrencyCode": "USD",
            "OnHoldStatus": "All",
        },
    ),
]
PRIMARY_ID = {table.entity_set: table.primary_id for table in dataverse_tables().values()}


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with start_dataverse(clients=CLIENTS, limits=None) as twin:
        form = {
            "grant_type": "client_credentials",
            "client_id": "dualbus",
            "client_secret": CLIENTS["dualbus"],
            "scope": twin.scope,
        }
        token = httpx.post(twin.token_url, data=form).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        with httpx.Client(base_url=twin.api_url, headers=headers, timeout=30) as client:
            yield client


def write_all(http: httpx.Client, maps: MapSet) -> None:
    def resolve(table: str, key: Mapping[str, Scalar]) -> str:
        ((column, value),) = key.items()
        response = http.get(f"{table}({column}='{value}')")
        return str(response.json()[PRIMARY_ID[table]]) if response.status_code == 200 else ""

    for name, row in ROWS:
        change = to_dataverse(maps[name], row)
        response = http.patch(entity_path(maps, change, resolve), json=resolved_body(maps, change, resolve))
        assert response.status_code == 204, (name, response.text)


def test_changes_upsert_into_the_twin_and_map_back(http: httpx.Client) -> None:
    """Every row written through the twin reads back, lookups expanded, as the F&O row it came from."""
    write_all(http, MAPS)

    def fetch(table: str, row_id: str) -> Mapping[str, object] | None:
        response = http.get(f"{table}({row_id})")
        return dict(response.json()) if response.status_code == 200 else None

    for name, original in ROWS:
        table_map = MAPS[name]
        if not table_map.carries("fo"):
            continue  # one way: nothing maps back
        rows = http.get(table_map.dataverse_table).json()["value"]
        assert len(rows) == 1, name
        back = to_fo(table_map, expand_lookups(table_map, rows[0], fetch))
        assert {k: back.payload.get(k) for k in original} == original, name


def test_rewriting_the_same_rows_updates_rather_than_duplicates(http: httpx.Client) -> None:
    """Upserting by alternate key twice leaves one row per record."""
    write_all(http, MAPS)
    write_all(http, MAPS)
    assert len(http.get("accounts").json()["value"]) == 1
    assert len(http.get("msdyn_customergroups").json()["value"]) == 1
