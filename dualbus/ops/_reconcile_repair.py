"""Repair events: a drifted record's current source state, republished so that the consumers apply it.

A repair is the envelope a producer would publish for the row (full mapped state, in the source's names,
``source_version`` the row's current version mark) with ``repair: true`` and an id of its own per run, so
that duplicate detection does not take it for the original change (docs/processing.md, "Repairs").

An F&O row has no version mark of its own (standard entities expose no modified time): its repair takes a
reading of a version clock (``producers.clock``, microseconds since the epoch as the F&O producer's), which
is later than the versions the producer issued before it, and carries the row's ``DualbusSourceVersion`` as
``base_version``, as the producer's events do. The reading is taken *before* the row's page is read
(``fo_reading``): a change made after that read gets a later version from the producer, so the repair's
older state never outbids it.

Its ``data`` also carries the fields of the map's source filter (``PartyType``), so that a consumer, which
checks the filter on the event, takes the record as the map's.

Its ``time`` is the reconcile run's, not the row's last change. A repair is the operator's word on which
side is right: the to-dataverse consumer applies it over a Dataverse edit F&O has not seen too
(docs/processing.md, "Repairs").
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from dualbus.producers.clock import VersionClock, process_clock
from dualbus.producers.errors import SourceError
from dualbus.producers.fo_rows import base_version
from dualbus.producers.tables import SourceTable
from dualbus.shared.envelope import Envelope, KeyValue, Operation, Origin
from dualbus.shared.errors import EnvelopeError
from dualbus.shared.maps import TableMap

__all__ = ["may_delete_orphan", "orphan_delete", "repair_event", "source_version"]


def source_version(
    origin: Origin,
    row: Mapping[str, object],
    clock: VersionClock | None = None,
    *,
    fo_reading: int | None = None,
) -> int:
    """A source row's version mark: Dataverse's ``versionnumber``; for F&O, a reading of the version clock.

    For F&O, pass ``fo_reading``, the clock's reading taken before the row's page was read: a reading taken
    after it could top the version the F&O producer gave a change made in between, and the row's older
    state would then overwrite that change. Without it the clock is read now. Without a ``clock``, F&O
    versions come from the process's own; pass the F&O producer's store-backed clock
    (``VersionClock(store)``) to stay above every version that producer issued on this host.
    """
    if origin is Origin.FO:
        return fo_reading if fo_reading is not None else (clock or process_clock()).next()
    value = row.get("versionnumber")
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
        raise EnvelopeError(f"the row has no usable versionnumber: {value!r}")
    return int(value)


def repair_event(
    table: SourceTable,
    row: Mapping[str, object],
    *,
    run_id: str,
    now: datetime,
    create: bool,
    clock: VersionClock | None = None,
    fo_reading: int | None = None,
) -> Envelope:
    """The repair envelope of one source row (``create`` when the target lacks the record).

    ``fo_reading`` is the F&O version clock's reading taken before the row was read (``source_version``).
    """
    key = table.key_of(row)
    return Envelope.for_change(
        origin=table.origin,
        area=table.area,
        entity=table.name,
        key=key,
        operation=Operation.CREATE if create else Operation.UPDATE,
        source_version=source_version(table.origin, row, clock, fo_reading=fo_reading),
        time=now,
        data=_state(table, row),
        company=table.company_of(key),
        repair_run=run_id,
        base_version=_base_version(table, row),
    )


def _base_version(table: SourceTable, row: Mapping[str, object]) -> int | None:
    if table.origin is not Origin.FO:
        return None
    try:
        return base_version(row)
    except SourceError as exc:
        raise EnvelopeError(str(exc)) from exc


def _state(table: SourceTable, row: Mapping[str, object]) -> dict[str, object]:
    conditions = (
        table.table_map.source_filter.fo
        if table.origin is Origin.FO
        else table.table_map.source_filter.dataverse
    )
    filters = {c.field: row[c.field] for c in conditions if c.field in row}
    return {**table.data_of(row), **filters}


def _source_value(table: SourceTable, name: str, value: object) -> object:
    """The source's value of key part ``name`` for the target's ``value``: a value map read backwards (a
    hierarchy purpose's 806380003 is F&O's "OrganizationChart"); else the value as it is."""
    source = table.origin.side
    for field in table.table_map.fields:
        if field.name_on(source) == name:
            mapped = field.mapped(value, to=source)
            if mapped is not None:
                return mapped
    return value


def may_delete_orphan(table_map: TableMap, mark: int | None) -> bool:
    """Whether a target row without its source row may be deleted, judged by dualbus's version ``mark`` on it.

    On a map that carries changes both ways, a row dualbus never wrote (no mark; F&O's 0 counts as none)
    was made on the target side, and may be a new record whose create has not reached the source yet (its
    route paused, a backlog, a dead letter). Its delete would pass the consumer's stale guard and then be
    published to the source as well, by the target side's producer, so the record would be gone from both
    systems. It is only reported. On a one-way map the target side publishes nothing, and the row may go.
    """
    both_ways = table_map.carries("fo") and table_map.carries("dataverse")
    return not both_ways or bool(mark)


def orphan_delete(
    table: SourceTable, key_values: tuple[object, ...], mark: int | None, *, run_id: str, now: datetime
) -> Envelope | None:
    """A repair that deletes a target row whose source row is gone; None when its key cannot be named.

    ``key_values`` is the target row's natural key; where the two sides' keys have as many parts they match
    position by position. A map whose keys differ in shape (products: company and number against one
    composed number) cannot name the source row from the target's key, and the orphan is only reported.
    The version is one above the mark the target row holds (1 when it holds none, which ``may_delete_orphan``
    allows on one-way maps only), so the consumers' stale guard lets the delete through.
    """
    if len(key_values) != len(table.key_fields):
        return None
    key: dict[str, KeyValue] = {}
    for name, value in zip(table.key_fields, key_values, strict=True):
        own = _source_value(table, name, value)
        key[name] = own if isinstance(own, int) and not isinstance(own, bool) else str(own)
    company = table.company_field
    if company in key:
        # As the source's producer carries it (F&O answers dataAreaId in lower case; Dataverse holds the
        # company code as F&O's legal entity id, in upper case): the delete then goes to the record's own
        # session, beside its other changes and its tombstone (the ordering bucket hashes the key as given).
        value = str(key[company])
        key[company] = value.lower() if table.origin is Origin.FO else value.upper()
    return Envelope.for_change(
        origin=table.origin,
        area=table.area,
        entity=table.name,
        key=key,
        operation=Operation.DELETE,
        source_version=(mark or 0) + 1,
        time=now,
        company=table.company_of(key),
        repair_run=run_id,
    )
