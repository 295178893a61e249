"""How the F&O producer decides a row state against what it stored: published, unchanged, or an echo."""

from __future__ import annotations

from dualbus.d365 import FO_VERSION_FIELD, FO_WRITE_DIGEST_FIELD
from dualbus.producers.clock import VersionClock
from dualbus.producers.fo_rows import FoBatch
from dualbus.producers.tables import source_tables
from dualbus.shared.envelope import Origin
from dualbus.shared.fo_echo import echo_fields, write_digest
from dualbus.shared.maps import load_maps

[CUSTOMERS] = [t for t in source_tables(load_maps(), Origin.FO) if t.table_map.name == "customers"]


def row(mark: int, **overrides: object) -> dict[str, object]:
    """Customer C-1 as the F&O sink leaves it at ``mark``, with ``overrides`` made after the write."""
    values: dict[str, object] = dict.fromkeys(echo_fields(CUSTOMERS.table_map), "")
    values.update(dataAreaId="usmf", CustomerAccount="C-1", OrganizationName="Fabrikam", CreditLimit=0)
    values.update(PartyType="Organization", OnHoldStatus="No", CreditLimitIsMandatory="No")
    digest = write_digest(CUSTOMERS.table_map, values, mark)
    return {**values, FO_VERSION_FIELD: mark, FO_WRITE_DIGEST_FIELD: digest, **overrides}


def stored_after(batch: FoBatch) -> str:
    [change] = batch.outbox.digests
    assert change.digest is not None
    return change.digest


def decide(state: dict[str, object], stored: str | None) -> FoBatch:
    batch = FoBatch(VersionClock())
    batch.state(CUSTOMERS, state, stored, None)
    return batch


def test_a_write_of_dualbus_after_a_published_state_is_recorded_not_published():
    published = stored_after(decide(row(3, OrganizationName="Before"), None))
    assert published.startswith("3:")
    echo = decide(row(5), published)
    assert echo.outbox.envelopes == []
    assert echo.echoes == {"customer": 1}
    # Recorded with its mark: the same state read again is unchanged, not an echo again.
    again = decide(row(5), stored_after(echo))
    assert (again.outbox.envelopes, again.echoes, again.unchanged) == ([], {}, 1)


def test_a_row_the_producer_holds_no_state_of_is_published_whatever_its_digest():
    """Never published, or forgotten since (deleted, or left the map and back): no echo."""
    batch = decide(row(5), None)
    assert [e.data["OrganizationName"] for e in batch.outbox.envelopes] == ["Fabrikam"]
    assert batch.echoes == {}


def test_an_edit_back_to_dualbus_values_after_a_published_edit_is_published():
    first = stored_after(decide(row(5), stored_after(decide(row(3, OrganizationName="Before"), None))))
    edited = stored_after(decide(row(5, OrganizationName="Edited"), first))
    restored = decide(row(5), edited)
    assert [e.data["OrganizationName"] for e in restored.outbox.envelopes] == ["Fabrikam"]


def test_a_digest_stored_by_an_earlier_release_is_compared_but_never_taken_for_an_echo():
    """Before the mark was kept in front, a stored digest was the hash alone."""
    current = stored_after(decide(row(3), None))
    earlier = current.partition(":")[2]
    assert decide(row(3), earlier).unchanged == 1
    batch = decide(row(5), earlier)
    assert len(batch.outbox.envelopes) == 1
    assert batch.echoes == {}
