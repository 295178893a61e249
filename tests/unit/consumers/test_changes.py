"""An event becomes the target changes its area's maps imply, or a permanent error naming the problem."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from consumers import target_changes
from shared.envelope import Envelope, Operation, Origin
from shared.errors import EnvelopeError, TransformError
from shared.maps import load_maps
from shared.topology import Direction

MAPS = load_maps()
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _event(origin, entity, key, data, *, area="currency", operation=Operation.UPDATE, version=3):
    return Envelope.for_change(
        origin=origin,
        area=area,
        entity=entity,
        key=key,
        operation=operation,
        source_version=version,
        time=NOW,
        data=data,
    )


def test_fo_currency_maps_to_a_dataverse_upsert():
    """An F&O currency becomes a transactioncurrencies change keyed by ISO code, values mapped."""
    event = _event(
        Origin.FO, "Currencies", {"CurrencyCode": "EUR"}, {"Name": "Euro", "RoundingPrecision": 0.01}
    )
    [change] = target_changes(event, area="currency", direction=Direction.TO_DATAVERSE, maps=MAPS)
    assert change.table_map.dataverse_table == "transactioncurrencies"
    assert dict(change.key) == {"isocurrencycode": "EUR"}
    assert change.fields["currencyname"] == "Euro"
    assert change.fields["currencyprecision"] == 2
    assert change.source_version == 3
    assert change.time == NOW
    assert not change.delete


def test_dataverse_currency_maps_to_an_fo_upsert():
    """A Dataverse currency becomes a Currencies change keyed by CurrencyCode."""
    event = _event(
        Origin.DATAVERSE, "transactioncurrencies", {"isocurrencycode": "USD"}, {"currencyname": "Dollar"}
    )
    [change] = target_changes(event, area="currency", direction=Direction.TO_FO, maps=MAPS)
    assert dict(change.key) == {"CurrencyCode": "USD"}
    assert change.fields["Name"] == "Dollar"


def test_a_delete_carries_the_target_key_only():
    """A delete needs no data: its key maps part by part onto the target's key."""
    event = _event(Origin.FO, "Currencies", {"CurrencyCode": "EUR"}, {}, operation=Operation.DELETE)
    [change] = target_changes(event, area="currency", direction=Direction.TO_DATAVERSE, maps=MAPS)
    assert change.delete
    assert dict(change.key) == {"isocurrencycode": "EUR"}
    assert dict(change.fields) == {}


def test_an_event_of_another_area_is_an_envelope_error():
    """An event that does not belong to the consumer's area is refused as an invalid envelope."""
    event = _event(Origin.FO, "Currencies", {"CurrencyCode": "EUR"}, {})
    with pytest.raises(EnvelopeError, match="area"):
        target_changes(event, area="company", direction=Direction.TO_DATAVERSE, maps=MAPS)


def test_an_event_from_the_target_side_is_an_envelope_error():
    """A to-dataverse consumer refuses events that come from Dataverse."""
    event = _event(Origin.DATAVERSE, "transactioncurrencies", {"isocurrencycode": "EUR"}, {})
    with pytest.raises(EnvelopeError, match="comes from dataverse"):
        target_changes(event, area="currency", direction=Direction.TO_DATAVERSE, maps=MAPS)


def test_an_entity_without_a_map_is_a_mapping_error():
    """An entity no map of the area takes is a TransformError naming the entity."""
    event = _event(Origin.FO, "Planets", {"Id": "x"}, {})
    with pytest.raises(TransformError, match="Planets"):
        target_changes(event, area="currency", direction=Direction.TO_DATAVERSE, maps=MAPS)


def test_a_value_outside_the_value_map_names_map_and_field():
    """A value the map cannot carry raises a TransformError naming the map and the field."""
    event = _event(Origin.FO, "Currencies", {"CurrencyCode": "EUR"}, {"RoundingPrecision": 0.5})
    with pytest.raises(TransformError) as caught:
        target_changes(event, area="currency", direction=Direction.TO_DATAVERSE, maps=MAPS)
    assert caught.value.map_name == "currency"
    assert caught.value.field == "RoundingPrecision"


def test_a_repair_reapplies_the_version_the_target_holds():
    """A repair is stale only against a newer version; an ordinary change already against an equal one."""
    ordinary = _event(Origin.FO, "Currencies", {"CurrencyCode": "EUR"}, {"Name": "Euro"}, version=5)
    repair = ordinary.model_copy(update={"repair": True})
    [plain] = target_changes(ordinary, area="currency", direction=Direction.TO_DATAVERSE, maps=MAPS)
    [again] = target_changes(repair, area="currency", direction=Direction.TO_DATAVERSE, maps=MAPS)
    assert (plain.is_stale(5), plain.is_stale(4), plain.is_stale(None)) == (True, False, False)
    assert (again.is_stale(5), again.is_stale(6)) == (False, True)
