"""Repair events: a drifted record's current source state, republished so that the consumers apply it.

A repair is the envelope a producer would publish for the row (full mapped state, in the source's names,
``source_version`` the row's current version mark) with ``repair: true`` and an id of its own per run, so
that duplicate detection does not take it for the original change (docs/processing.md, "Repairs").

An F&O row has no version mark of its own (standard entities expose no modified time): its repair takes a
reading of the producer's version clock (``producers.clock``), which is later than any version the F&O
producer issued before, and carries the row's ``DualbusSourceVersion`` as ``base_version``, as the
producer's events do.

Its ``data`` also carries the fields of the map's source filter (``PartyType``), so that a consumer, which
checks the filter on the event, takes the record as the map's.

Its ``time`` is the reconcile run's, not the row's last change. A repair from F&O is still skipped by the
to-dataverse consumer where Dataverse holds an edit F&O has not seen (docs/processing.md): that edit is the
newer state, on its way to F&O.
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

__all__ = ["orphan_delete", "repair_event", "source_version"]


def source_version(origin: Origin, row: Mapping[str, object], clock: VersionClock | None = None) -> int:
    """A source row's version mark: Dataverse's ``versionnumber``; for F&O, a reading of the clock now.

    Without a ``clock``, F&O versions come from the process's own; pass the F&O producer's store-backed
    clock (``VersionClock(store)``) to stay above every version that producer issued on this host.
    """
    if origin is Origin.FO:
        return (clock or process_clock()).next()
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
) -> Envelope:
    """The repair envelope of one source row (``create`` when the target lacks the record)."""
    key = table.key_of(row)
    return Envelope.for_change(
        origin=table.origin,
        area=table.area,
        entity=table.name,
        key=key,
        operation=Operation.CREATE if create else Operation.UPDATE,
        source_version=source_version(table.origin, row, clock),
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


def orphan_delete(
    table: SourceTable, key_values: tuple[object, ...], mark: int | None, *, run_id: str, now: datetime
) -> Envelope | None:
    """A repair that deletes a target row whose source row is gone; None when its key cannot be named.

    ``key_values`` is the target row's natural key; where the two sides' keys have as many parts they match
    position by position. A map whose keys differ in shape (products: company and number against one
    composed number) cannot name the source row from the target's key, and the orphan is only reported.
    The version is one above the mark the target row holds (1 when it holds none), so the consumers' stale
    guard lets the delete through.
    """
    if len(key_values) != len(table.key_fields):
        return None
    key: dict[str, KeyValue] = {
        name: value if isinstance(value, int) and not isinstance(value, bool) else str(value)
        for name, value in zip(table.key_fields, key_values, strict=True)
    }
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
