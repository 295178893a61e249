"""Judging the twins' write logs after a run: which source versions were applied twice, which changes lost.

A record's writes on each side are read from the twin's log (``GET /_sandbox/writes``). The checks:

- **duplicated**: dualbus wrote one record twice with the same version mark (``dualbus_sourceversion`` on
  Dataverse, ``DualbusSourceVersion`` on F&O): a source version applied twice.
- **lost**, Dataverse to F&O: the last write of a Dataverse record is a user's update at ``versionnumber`` V,
  and dualbus never wrote V to F&O. Dataverse versions are unique over the whole twin, so V names the change.
- **lost**, F&O to Dataverse: the last write of an F&O record is a user's update at time t, and dualbus never
  wrote that record on Dataverse with a version of t or later (F&O versions are the F&O producer's clock when
  it read the row, on the same machine). Records are matched by company and number as the workload names
  them (``sandbox.workload.kinds``); F&O entities whose number is not a key field are left to reconcile.
- **lost**, deletes: the last write of a record on one side is a user's delete, and the other side's last
  write of it is not a delete.

When a record is edited on both sides at once, Dataverse wins (docs/processing.md): the F&O edit is
superseded, dualbus writes Dataverse's state to F&O, and the F&O record's last write is dualbus's, not the
user's, so no check above expects the superseded edit.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from dualbus.sandbox.dataverse.tables import TABLES
from dualbus.sandbox.workload.dataverse_shape import SHAPES
from dualbus.sandbox.workload.kinds import KINDS
from dualbus.shared.maps import load_maps

__all__ = ["Judgement", "Writers", "judge", "read_writes"]

Entry = Mapping[str, Any]
_COMPANY_LOOKUP = "_msdyn_company_value"


def read_writes(client: httpx.Client, after: int = 0) -> list[dict[str, Any]]:
    """The entries of a twin's write log after ``after``, oldest first (``client``: base URL and token)."""
    entries: list[dict[str, Any]] = []
    while True:
        after = entries[-1]["sequence"] if entries else after
        response = client.get("/_sandbox/writes", params={"after": after})
        response.raise_for_status()
        page = response.json()["value"]
        if not page:
            return entries
        entries.extend(page)


@dataclass(slots=True)
class Judgement:
    """What the write logs say: counts, and a few examples of each finding."""

    fo_writes: int = 0
    dataverse_writes: int = 0
    duplicated: int = 0
    lost: int = 0
    examples: dict[str, list[Any]] = field(default_factory=lambda: defaultdict(list))

    def note(self, kind: str, example: Any) -> None:
        """Count a finding of ``kind`` ("duplicated" or "lost") and keep its first examples."""
        setattr(self, kind, getattr(self, kind) + 1)
        if len(self.examples[kind]) < 5:
            self.examples[kind].append(example)


# F&O entity -> (the key field holding the workload's number, the Dataverse tables and their number column).
_MATCHED: dict[str, tuple[str, dict[str, str]]] = {}
for _spec in KINDS.values():
    if _spec.number in _spec.fo_keys:
        _tables = _MATCHED.setdefault(_spec.fo_entity, (_spec.number, {}))[1]
        _tables[SHAPES[_spec.shape].table] = _spec.dv_key


def _mapped_names() -> dict[tuple[str, str], set[str]]:
    """(side, table) -> the source names some map carries to the other side (fields, composed, lookups)."""
    names: dict[tuple[str, str], set[str]] = defaultdict(set)
    for table_map in load_maps():
        for source, target, table in (
            ("fo", "dataverse", table_map.fo_entity),
            ("dataverse", "fo", table_map.dataverse_table),
        ):
            if not table_map.carries(target):
                continue
            found = names[(source, table)]
            for field_map in table_map.fields_towards(target):
                if field_map.constant is None:
                    found.update(field_map.compose or (field_map.name_on(source) or "",))
            for lookup in table_map.lookups_towards(target):
                found.update(
                    lookup.key.values() if source == "fo" else (f"_{lookup.dataverse.lower()}_value",)
                )
    return names


_MAPPED = _mapped_names()
_DV_NUMBER = {table: column for _, tables in _MATCHED.values() for table, column in tables.items()}


@dataclass(frozen=True, slots=True)
class Writers:
    """The writer names of dualbus and of the users in each log (F&O client id, Dataverse user id)."""

    dualbus_fo: str
    dualbus_dataverse: str
    user_fo: str
    user_dataverse: str
    # Writes up to this sequence seeded the twins before the run: they are not changes to follow.
    since: int = 0


def judge(
    fo: Sequence[Entry], dataverse: Sequence[Entry], writers: Writers, companies: Mapping[str, str]
) -> Judgement:
    """Judge both logs; ``companies`` maps a Dataverse company GUID to its code.

    Only changes the users made are followed (not what seeded the twins before the run).
    """
    dualbus_fo, dualbus_dataverse = writers.dualbus_fo, writers.dualbus_dataverse
    verdict = Judgement(fo_writes=len(fo), dataverse_writes=len(dataverse))
    fo_records = _by_record(fo, _fo_record)
    dv_records = _by_record(dataverse, _dv_record)
    for side, records, mine in (("fo", fo_records, dualbus_fo), ("dataverse", dv_records, dualbus_dataverse)):
        _duplicates(verdict, side, records, mine)
    written_to_fo = {e["version"] for e in fo if e["writer"] == dualbus_fo and e["operation"] == "upsert"}
    for record, entries in dv_records.items():
        arrived = [e["row_version"] for e in entries if e["row_version"] in written_to_fo]
        mark = max(arrived, default=0)
        if _unsent(entries, "dataverse", writers, lambda e, mark=mark: (e["row_version"] or 0) <= mark):
            verdict.note("lost", {"to": "fo", "record": record, "versionnumber": entries[-1]["row_version"]})
    dv_by_number = _dataverse_by_number(dv_records, companies)
    fo_by_number = {}
    for record, entries in fo_records.items():
        number = _fo_number(record, entries[-1])
        if number is None:
            continue
        fo_by_number[number] = entries
        _check_fo_origin(verdict, record, entries, dv_by_number.get(number, []), writers)
    for number, entries in dv_by_number.items():
        last = entries[-1]
        if (
            last["operation"] == "delete"
            and last["writer"] == writers.user_dataverse
            and last["sequence"] > writers.since
        ):
            other = fo_by_number.get(number)
            if other and other[-1]["operation"] != "delete":
                verdict.note("lost", {"to": "fo", "record": number, "delete": True})
    return verdict


def _by_record(entries: Iterable[Entry], record_of: Any) -> dict[Any, list[Entry]]:
    records: dict[Any, list[Entry]] = defaultdict(list)
    for entry in entries:
        records[record_of(entry)].append(entry)
    return records


def _fo_record(entry: Entry) -> tuple[Any, ...]:
    key = entry["key"]
    return (entry["table"], *((name, str(key[name]).casefold()) for name in sorted(key)))


def _dv_record(entry: Entry) -> tuple[str, str]:
    table = entry["table"]
    return table, str(entry["key"][TABLES[table].primary_id])


def _fo_number(record: tuple[Any, ...], last: Entry) -> tuple[str, str] | None:
    matched = _MATCHED.get(record[0])
    if matched is None:
        return None
    key = last["key"]
    return str(key["dataAreaId"]).upper(), str(key[matched[0]]).casefold()


def _dataverse_by_number(
    records: Mapping[Any, list[Entry]], companies: Mapping[str, str]
) -> dict[tuple[str, str], list[Entry]]:
    """Dataverse entries of the matched tables, by (company code, number); merged in log order."""
    found: dict[tuple[str, str], list[Entry]] = defaultdict(list)
    for (table, _), entries in records.items():
        column = _DV_NUMBER.get(table)
        if column is None:
            continue
        key = entries[-1]["key"]
        company = companies.get(str(key.get(_COMPANY_LOOKUP)), "")
        found[(company.upper(), str(key.get(column)).casefold())].extend(entries)
    for entries in found.values():
        entries.sort(key=lambda e: e["sequence"])
    return found


def _duplicates(verdict: Judgement, side: str, records: Mapping[Any, list[Entry]], mine: str) -> None:
    for record, entries in records.items():
        seen: set[int] = set()
        for entry in entries:
            if entry["writer"] != mine or entry["operation"] != "upsert" or entry["version"] is None:
                continue
            if entry["version"] in seen:
                verdict.note("duplicated", {"side": side, "record": record, "version": entry["version"]})
            seen.add(entry["version"])


def _check_fo_origin(
    verdict: Judgement,
    record: Any,
    entries: Sequence[Entry],
    other: Sequence[Entry],
    writers: Writers,
) -> None:
    last = entries[-1]
    if last["writer"] != writers.user_fo or last["sequence"] <= writers.since:
        return
    if last["operation"] == "delete":
        if other and other[-1]["operation"] != "delete":
            verdict.note("lost", {"to": "dataverse", "record": record, "delete": True})
        return
    arrived = [
        e["version"] for e in other if e["writer"] == writers.dualbus_dataverse and e["operation"] == "upsert"
    ]
    mark = max((v for v in arrived if v is not None), default=0)
    if _unsent(entries, "fo", writers, lambda e: e["time_us"] <= mark):
        verdict.note("lost", {"to": "dataverse", "record": record, "time_us": last["time_us"]})


def _unsent(entries: Sequence[Entry], side: str, writers: Writers, arrived: Any) -> bool:
    """Whether the record's last state differs, in a mapped field, from what the other side received.

    What the other side holds: the record's state as of the last version that reached it (``arrived(e)``
    holds for the writes up to it), plus what dualbus wrote here (which came from the other side).
    A user's change undone by a later one before it was read travels nowhere, and is no loss.
    """
    last = entries[-1]
    user = writers.user_fo if side == "fo" else writers.user_dataverse
    mine = writers.dualbus_fo if side == "fo" else writers.dualbus_dataverse
    if last["writer"] != user or last["operation"] != "upsert" or last["sequence"] <= writers.since:
        return False
    known: dict[str, Any] = {}
    final: dict[str, Any] = {}
    for entry in entries:
        if entry["operation"] == "delete":
            known, final = {}, {}
            continue
        final.update(entry["fields"])
        # What seeded both twins before the run is on both sides already.
        if arrived(entry) or entry["writer"] == mine or entry["sequence"] <= writers.since:
            known.update(entry["fields"])
    mapped = _MAPPED.get((side, last["table"]), set())
    return any(known.get(name) != final.get(name) for name in mapped if name in final)
