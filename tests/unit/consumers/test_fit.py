"""An event must fit its maps before it is transformed: the map's key, agreeing data, only fields it reads."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dualbus.consumers import target_changes
from dualbus.producers.tables import source_tables
from dualbus.shared.envelope import Envelope, Operation, Origin
from dualbus.shared.errors import RejectedError, Rejection, TransformError
from dualbus.shared.maps import load_maps
from dualbus.shared.topology import Direction

MAPS = load_maps()
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
KEY = {"dataAreaId": "usmf", "CustomerAccount": "US-001"}
DATA = {**KEY, "OrganizationName": "Contoso", "PartyType": "Organization", "CreditLimit": 100}


def _customer(key=None, data=None, *, area="customer", origin=Origin.FO, operation=Operation.UPDATE):
    return Envelope.for_change(
        origin=origin,
        area=area,
        entity="CustomersV3",
        key=KEY if key is None else key,
        operation=operation,
        source_version=3,
        time=NOW,
        data=DATA if data is None else data,
    )


def _changes(event):
    return target_changes(event, area="customer", direction=Direction.TO_DATAVERSE, maps=MAPS)


def test_a_customer_that_fits_is_transformed():
    """A key of the map's parts and data of fields the map reads give the account change."""
    [change] = _changes(_customer())
    assert change.fields["name"] == "Contoso"


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (_customer(key={"CustomerAccount": "US-001"}), Rejection.KEY_MISMATCH),
        (_customer(key={**KEY, "Extra": "x"}), Rejection.KEY_MISMATCH),
        (_customer(key={"dataAreaId": "usmf", "AccountNum": "US-001"}), Rejection.KEY_MISMATCH),
        (_customer(key={"dataAreaId": "usmf", "CustomerAccount": 1}), Rejection.KEY_MISMATCH),
        (_customer(data={**DATA, "CustomerAccount": "US-002"}), Rejection.KEY_MISMATCH),
        (_customer(data={**DATA, "CustomerAccount": None}), Rejection.KEY_MISMATCH),
        (_customer(data={**DATA, "Colour": "blue"}), Rejection.UNKNOWN_FIELD),
        (_customer(data={"Colour": "blue"}, operation=Operation.DELETE), Rejection.UNKNOWN_FIELD),
        (_customer(area="vendor"), Rejection.MISROUTED),
        (_customer(origin=Origin.DATAVERSE), Rejection.MISROUTED),
    ],
)
def test_an_event_that_does_not_fit_is_rejected_before_transforming(event, reason):
    """Each way of not fitting the map names its reason."""
    with pytest.raises(RejectedError) as caught:
        _changes(event)
    assert caught.value.reason is reason


@pytest.mark.parametrize("credit", [1e20, -1e20, -1, 100_000_000_000_001])
def test_money_out_of_the_targets_range_is_a_mapping_error(credit):
    """A credit limit Dataverse's creditlimit cannot hold (0 to 10^14, from the schema) is refused."""
    with pytest.raises(TransformError, match="outside the range"):
        _changes(_customer(data={**DATA, "CreditLimit": credit}))


def test_every_field_a_producer_carries_is_one_the_consumer_reads():
    """The producers' data (carried and delete fields) never holds a name the consumer calls unknown."""
    for origin in Origin:
        for table in source_tables(MAPS, origin):
            source = table.side
            direction = Direction.TO_DATAVERSE if source == "fo" else Direction.TO_FO
            key = {part: f"k-{part}" for part in table.key_fields}
            data = dict.fromkeys((*table.carried_fields, *table.delete_fields))
            event = Envelope.for_change(
                origin=origin,
                area=table.area,
                entity=table.name,
                key=key,
                operation=Operation.DELETE,
                source_version=1,
                time=NOW,
                data={k: v for k, v in data.items() if k not in key},
            )
            try:
                target_changes(event, area=table.area, direction=direction, maps=MAPS)
            except RejectedError as exc:
                pytest.fail(f"{table.table_map.name}: {exc}")
            except TransformError:
                pass  # placeholder values need not transform; only the names matter here
