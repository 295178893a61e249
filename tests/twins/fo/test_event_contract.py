"""The twin's data event has the shape of the documented RemoteExecutionContext example (fixtures/README.md).

The example is a Dataverse contact update, so the test compares shapes and the fixed values, not data:
https://github.com/MicrosoftDocs/powerapps-docs/blob/0180169dbe9064b4367f6a002128454acccedc4d/powerapps-docs/developer/data-platform/use-webhooks.md
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from dualbus.sandbox.fo import Change, FoHandle, data_event_payload
from tests.twins.fo.conftest import KEY_PATH, Webhook, customer

DOCUMENTED: dict[str, Any] = orjson.loads(
    (Path(__file__).parent / "fixtures" / "remote-execution-context-update-contact.json").read_bytes()
)
FIXED = (
    "Depth",
    "IsExecutingOffline",
    "IsInTransaction",
    "IsOfflinePlayback",
    "IsolationMode",
    "Mode",
    "Stage",
)
GUIDS = (
    "BusinessUnitId",
    "CorrelationId",
    "InitiatingUserId",
    "OperationId",
    "OrganizationId",
    "PrimaryEntityId",
)
WCF_DATE = re.compile(r"^/Date\(\d+([+-]\d{4})?\)/$")


@pytest.fixture
def update_event(fo: FoHandle, client: httpx.Client, webhook: Webhook) -> dict[str, Any]:
    """The twin's event for an update of a customer, as a webhook receives it."""
    client.post("/data/CustomersV3", json=customer("US-001"))
    fo.twin.add_webhook(webhook.url, ["CustomersV3"])
    client.patch(KEY_PATH, json={"OrganizationName": "Fabrikam"})
    assert fo.twin.events.flush(timeout=10)
    (event,) = webhook.received
    return event


def _kind(value: object) -> type:
    return type(value)


def test_top_level_keys_and_value_kinds_match_the_documented_context(update_event: dict[str, Any]) -> None:
    """The event has exactly the documented top-level keys, each with the documented JSON kind of value."""
    assert set(update_event) == set(DOCUMENTED)
    # ParentContext: the documented step ran inside a parent operation; an F&O event has none.
    kinds = {k: _kind(v) for k, v in DOCUMENTED.items() if k != "ParentContext"}
    assert {k: _kind(update_event[k]) for k in kinds} == kinds
    assert update_event["ParentContext"] is None
    assert {k: update_event[k] for k in FIXED} == {k: DOCUMENTED[k] for k in FIXED}
    assert (update_event["SecondaryEntityName"], update_event["RequestId"]) == ("none", None)
    assert all(uuid.UUID(update_event[k]) for k in GUIDS)
    assert WCF_DATE.match(update_event["OperationCreatedOn"])
    assert WCF_DATE.match(DOCUMENTED["OperationCreatedOn"])
    assert set(update_event["OwningExtension"]) == set(DOCUMENTED["OwningExtension"])


def test_entity_values_have_the_documented_shape(update_event: dict[str, Any]) -> None:
    """InputParameters are key/value pairs; Target and PreImage are Entities shaped like the example's."""
    documented_target = DOCUMENTED["InputParameters"][0]["value"]
    assert all(set(p) == {"key", "value"} for p in update_event["InputParameters"])
    parameters = {p["key"]: p["value"] for p in update_event["InputParameters"]}
    assert list(parameters) == ["Target", "PreImage"]
    for entity in parameters.values():
        assert set(entity) == set(documented_target)
        assert entity["__type"] == documented_target["__type"]
        assert all(set(a) == {"key", "value"} for a in entity["Attributes"] + entity["FormattedValues"])
        assert (entity["EntityState"], entity["RowVersion"]) == (None, None)
        assert (entity["KeyAttributes"], entity["RelatedEntities"]) == ([], [])
        assert entity["Id"] == update_event["PrimaryEntityId"]
        assert entity["LogicalName"] == update_event["PrimaryEntityName"]


def test_null_datetimes_are_left_out_and_other_nulls_kept() -> None:
    """A null datetime field is dropped from the attributes, as data-events.md says; a null string stays."""
    row = {"dataAreaId": "usmf", "CustomerAccount": "C-1", "AddressValidTo": None, "OrganizationName": None}
    change = Change(
        entity="CustomersV3",
        change_type="Create",
        keys={"dataAreaId": "usmf", "CustomerAccount": "C-1"},
        row=row,
        before=None,
        changed_fields=tuple(sorted(row)),
        sequence=1,
        time=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        modified_by="someone",
        rec_id=7,
    )
    event = data_event_payload(change)
    target = event["InputParameters"][0]["value"]
    assert {a["key"] for a in target["Attributes"]} == {
        "mserp_dataareaid",
        "mserp_customeraccount",
        "mserp_organizationname",
    }
    assert event["OperationCreatedOn"] == "/Date(1767323045000)/"
    assert event["OperationId"] == data_event_payload(change)["OperationId"]
