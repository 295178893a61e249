"""Parsing F&O data events: the documented RemoteExecutionContext shape, F&O's names, malformed cases."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from dualbus.producers.errors import InvalidDataEventError, SourceError
from dualbus.producers.fo_events import parse_data_event
from dualbus.producers.fo_values import parse_wcf_date
from dualbus.shared.envelope import Operation

FIXTURES = Path(__file__).parent / "fixtures"
ROW_ID = "00004c03-0000-0000-6d28-014105000000"


def _fixture(name: str) -> dict[str, Any]:
    payload: dict[str, Any] = orjson.loads((FIXTURES / name).read_bytes())
    return payload


def _customer_event() -> dict[str, Any]:
    return _fixture("remote-execution-context-update-customer.json")


def _target(payload: dict[str, Any]) -> dict[str, Any]:
    target: dict[str, Any] = payload["InputParameters"][0]["value"]
    return target


def test_documented_example_is_read() -> None:
    """Microsoft's example context parses; its contact table is no F&O entity, so nothing is decoded."""
    event = parse_data_event(_fixture("remote-execution-context-update-contact.json"))
    assert event.entity is None
    assert event.event_entity_name == "contact"
    assert event.operation is Operation.UPDATE
    assert event.row_id == "6d81597f-0f9f-e711-8122-000d3aa2331c"
    assert event.target == {}
    assert event.time == datetime(2017, 9, 26, 7, 4, 8, tzinfo=UTC)
    assert event.operation_id == "4af10637-4ea2-e711-8122-000d3aa2331c"


def test_fo_event_maps_back_to_its_entity_and_fields() -> None:
    """An mserp_ table and mserp_ columns are read back as the entity set and its fields, values decoded."""
    event = parse_data_event(_customer_event())
    assert event.entity == "CustomersV3"
    assert event.operation is Operation.UPDATE
    assert event.row_id == ROW_ID
    # The EntityReference is no F&O value; the enum is read from FormattedValues, the date as OData writes it.
    assert event.target == {
        "OrganizationName": "Contoso Retail San Diego",
        "OnHoldStatus": "All",
        "CredManLastReviewDate": "2017-09-26T00:04:07Z",
    }
    assert event.pre_image == {
        "dataAreaId": "usmf",
        "CustomerAccount": "US-001",
        "OrganizationName": "Contoso Retail",
        "PartyType": "Organization",
        "OnHoldStatus": "No",
        "DualbusSourceVersion": 41,
    }


@pytest.mark.parametrize(
    ("message", "operation"),
    [
        ("OnExternalCreated", Operation.CREATE),
        ("OnExternalUpdated", Operation.UPDATE),
        ("OnExternalDeleted", Operation.DELETE),
        ("Create", Operation.CREATE),
        ("Update", Operation.UPDATE),
        ("Delete", Operation.DELETE),
    ],
)
def test_message_names_give_the_operation(message: str, operation: Operation) -> None:
    """Virtual-table messages and the plain Create/Update/Delete messages are both understood."""
    payload = _customer_event()
    payload["MessageName"] = message
    assert parse_data_event(payload).operation is operation


def test_attribute_keys_match_fields_without_regard_to_case() -> None:
    """A column key in any case, with or without the mserp_ prefix, finds its field."""
    payload = _customer_event()
    _target(payload)["Attributes"] = [
        {"key": "MSERP_DataAreaId", "value": "usmf"},
        {"key": "customeraccount", "value": "US-002"},
    ]
    assert parse_data_event(payload).target == {"dataAreaId": "usmf", "CustomerAccount": "US-002"}


def test_enum_without_a_usable_name_is_left_out() -> None:
    """An option set's integer is never trusted: without a member name in FormattedValues it is unknown."""
    payload = _customer_event()
    _target(payload)["FormattedValues"] = []
    assert "OnHoldStatus" not in parse_data_event(payload).target
    _target(payload)["FormattedValues"] = [{"key": "mserp_onholdstatus", "value": "Sometimes"}]
    assert "OnHoldStatus" not in parse_data_event(payload).target


def test_delete_with_only_the_id_parses() -> None:
    """A delete whose Target holds nothing but its id is valid: the row is found through the index."""
    payload = _customer_event()
    payload["MessageName"] = "OnExternalDeleted"
    payload["InputParameters"] = [{"key": "Target", "value": {"Attributes": [], "Id": ROW_ID.upper()}}]
    event = parse_data_event(payload)
    assert (event.operation, event.row_id, event.target, event.pre_image) == (
        Operation.DELETE,
        ROW_ID,
        {},
        None,
    )


def test_oversized_context_without_input_parameters_keeps_the_ids() -> None:
    """Dataverse drops InputParameters from a body over 256 KB; the event still names its row."""
    payload = _customer_event()
    del payload["InputParameters"]
    event = parse_data_event(payload)
    assert (event.entity, event.row_id, event.target) == ("CustomersV3", ROW_ID, {})


def _without(path: tuple[str | int, ...]) -> Any:
    def change(payload: dict[str, Any]) -> None:
        parent: Any = payload
        for part in path[:-1]:
            parent = parent[part]
        del parent[path[-1]]

    return change


def _set(path: tuple[str | int, ...], value: object) -> Any:
    def change(payload: dict[str, Any]) -> None:
        parent: Any = payload
        for part in path[:-1]:
            parent = parent[part]
        parent[path[-1]] = value

    return change


TARGET: tuple[str | int, ...] = ("InputParameters", 0, "value")
MALFORMED = [
    (_without(("MessageName",)), "MessageName None"),
    (_set(("MessageName",), "Assign"), "MessageName 'Assign'"),
    (_without(("PrimaryEntityName",)), "no PrimaryEntityName"),
    (_set(("InputParameters",), {"Target": {}}), "InputParameters is not a list"),
    (_set(("InputParameters", 0), ["Target", {}]), r"InputParameters\[0\] is not"),
    (_set(TARGET, "mserp_custcustomerv3entity"), "Target is a JSON object"),
    (_set((*TARGET, "LogicalName"), "mserp_vendvendorv2entity"), "Target.LogicalName"),
    (_without((*TARGET, "Attributes")), "Target.Attributes is not a list"),
    (_set((*TARGET, "Attributes", 0), {"value": 1}), r"Target.Attributes\[0\]"),
    (_set((*TARGET, "FormattedValues"), [{"key": "mserp_onholdstatus", "value": 2}]), "not text"),
    (_set((*TARGET, "Id"), "not-a-guid"), "Target.Id is not a GUID"),
    (_set((*TARGET, "Id"), "6d81597f-0f9f-e711-8122-000d3aa2331c"), "different rows"),
    (_set((*TARGET, "Attributes", 2, "value"), "/Date(soon)/"), "is not a date-time"),
    (
        _set((*TARGET, "Attributes", 1, "value"), {"__type": "OptionSetValue:x", "Value": "2"}),
        "integer Value",
    ),
    (_set((*TARGET, "Attributes", 0, "value"), {"Value": 2}), "without a __type"),
    (_set(("OperationCreatedOn",), "yesterday"), "OperationCreatedOn"),
]


@pytest.mark.parametrize(("change", "message"), MALFORMED)
def test_malformed_contexts_are_refused_with_a_reason(change: Any, message: str) -> None:
    """Each malformed part of a context is an InvalidDataEventError (a SourceError) naming it."""
    payload = copy.deepcopy(_customer_event())
    change(payload)
    with pytest.raises(InvalidDataEventError, match=message) as raised:
        parse_data_event(payload)
    assert isinstance(raised.value, SourceError)


# Dates no datetime holds: past the largest timedelta, more digits than int() reads, out of datetime's range
# once added to the epoch, and ISO dates that leave years 1-9999 when moved to UTC.
IMPOSSIBLE_DATES = [
    "/Date(99999999999999999)/",
    pytest.param(f"/Date({'9' * 5000})/", id="/Date(<5000 digits>)/"),
    "/Date(-99999999999999)/",
    "/Date(253402300800000)/",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
]


@pytest.mark.parametrize("text", IMPOSSIBLE_DATES)
def test_a_date_no_datetime_can_hold_is_an_invalid_event(text: str) -> None:
    """An overflowing date is a malformed payload (400, dead-lettered), not an OverflowError or a
    ValueError that the webhook answers 500 and that stops the Service Bus intake."""
    with pytest.raises(InvalidDataEventError, match="OperationCreatedOn is not a date-time"):
        parse_wcf_date(text, "OperationCreatedOn")
    payload = _customer_event()
    _target(payload)["Attributes"][2]["value"] = text
    with pytest.raises(InvalidDataEventError, match="mserp_credmanlastreviewdate is not a date-time"):
        parse_data_event(payload)


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("/Date(253402300799999)/", datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)),
        ("/Date(-62135596800000)/", datetime(1, 1, 1, tzinfo=UTC)),
        ("0001-01-01T01:00:00+01:00", datetime(1, 1, 1, tzinfo=UTC)),
    ],
)
def test_the_first_and_last_moments_a_datetime_holds_are_read(text: str, moment: datetime) -> None:
    assert parse_wcf_date(text, "OperationCreatedOn") == moment


def test_a_context_without_any_row_id_is_refused() -> None:
    """An event naming no row at all (no PrimaryEntityId, no Target or PreImage id) cannot be used."""
    payload = _customer_event()
    del payload["PrimaryEntityId"]
    for parameter in payload["InputParameters"]:
        parameter["value"]["Id"] = None
    with pytest.raises(InvalidDataEventError, match="names no row"):
        parse_data_event(payload)


@pytest.mark.parametrize("payload", [[], "text", 5, None])
def test_a_payload_that_is_no_object_is_refused(payload: object) -> None:
    """Only a JSON object can be a RemoteExecutionContext."""
    with pytest.raises(InvalidDataEventError, match="JSON object"):
        parse_data_event(payload)
