"""Whether Dataverse has the alternate keys dualbus addresses rows by (docs/deploy.md, Dataverse step 3).

A consumer towards Dataverse reads and writes each row by its map's key (``accounts(msdyn_company=...,
accountnumber='...')``), which the Web API takes only when the table has an alternate key of exactly those
columns whose index is built; without one every change of that table is refused. Dual-write's own keys are
not published, so a deployment makes them, and this check, asked before the first message, names each one
missing instead of a backlog dead-lettered change by change.

It reads ``EntityDefinitions(LogicalName='<table>')/Keys?$select=KeyAttributes,EntityKeyIndexStatus``
(sources in ``sandbox/dataverse/definitions.py``): a key whose ``KeyAttributes`` are the map's key columns
and whose ``EntityKeyIndexStatus`` is ``Active`` will do. ``Pending`` and ``InProgress`` mean Dataverse is
still building the index (a new key's system job), so the check asks again later; ``Failed`` is a gap, as
no key at all. The four members: https://github.com/MicrosoftDocs/dynamics-365-customer-engagement/blob/
32235414510df6cc970233881061a9ce1c812a46/progref/webapireference/enumtypes/entitykeyindexstatus.md
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from http import HTTPStatus

from dualbus.d365 import dataverse_tables
from dualbus.shared.api import ApiReader, error_message
from dualbus.shared.errors import ConfigError, TransientError
from dualbus.shared.http import Response
from dualbus.shared.maps import MapSet

__all__ = ["KeyGap", "key_gaps", "keys_written"]

_BUILT = "Active"
_BUILDING = frozenset({"Pending", "InProgress"})
_SELECT = "KeyAttributes,EntityKeyIndexStatus"


@dataclass(frozen=True, slots=True)
class KeyGap:
    """An alternate key a table lacks (``status`` None), or has in a state it cannot be used in."""

    table: str
    columns: tuple[str, ...]
    status: str | None = None

    def __str__(self) -> str:
        columns = ", ".join(self.columns)
        if self.status is None:
            return f"{self.table} has no alternate key of ({columns})"
        return f"{self.table}'s alternate key of ({columns}) is {self.status}"


def keys_written(maps: MapSet, area: str) -> dict[str, set[frozenset[str]]]:
    """The alternate keys, by table logical name, that the area's maps address Dataverse rows by."""
    by_set = dataverse_tables()
    wanted: dict[str, set[frozenset[str]]] = {}
    for table_map in maps.in_area(area):
        table = by_set.get(table_map.dataverse_table) if table_map.carries("dataverse") else None
        if table is not None:
            wanted.setdefault(table.logical_name, set()).add(frozenset(table_map.key_on("dataverse")))
    return wanted


async def key_gaps(
    api: ApiReader, wanted: Mapping[str, Collection[frozenset[str]]], *, root: str
) -> list[KeyGap]:
    """The keys of ``wanted`` (table logical name → key columns) that Dataverse lacks or failed to build.

    TransientError while a key's index is being built, or when the service cannot answer now (from
    ``api``); ConfigError when it answers something this check cannot read. A table Dataverse does not
    know is left to the check of its columns (``shared.prerequisites``), which names it.
    """
    gaps: list[KeyGap] = []
    for table, keys in sorted(wanted.items()):
        path = f"{root.strip('/')}/EntityDefinitions(LogicalName='{table}')/Keys"
        response = await api.request("GET", path, params={"$select": _SELECT})
        if response.status_code == HTTPStatus.NOT_FOUND:
            continue
        if response.status_code != HTTPStatus.OK:
            raise ConfigError(
                f"GET {path} answered {response.status_code} {error_message(response)}: cannot tell whether "
                "the alternate keys dualbus addresses rows by are there"
            )
        held = _held(response, path)
        for columns in sorted(keys, key=sorted):
            status = held.get(columns)
            if status in _BUILDING:
                raise TransientError(f"{table}'s alternate key of ({', '.join(sorted(columns))}) is {status}")
            if status != _BUILT:
                gaps.append(KeyGap(table, tuple(sorted(columns)), status))
    return gaps


def _held(response: Response, path: str) -> dict[frozenset[str], str]:
    """The keys an answer lists: their columns → their index status."""
    try:
        listed = response.json()["value"]
        return {frozenset(key["KeyAttributes"]): str(key["EntityKeyIndexStatus"]) for key in listed}
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"GET {path} answered keys this check cannot read: {exc!r}") from exc
