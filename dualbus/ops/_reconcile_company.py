"""The company a compared row belongs to, for ``--companies`` and the counts per company.

A row's company is its target key's company part: ``dataAreaId`` on F&O, the ``msdyn_company`` lookup on
Dataverse. Where the target's key names no company but the source's does (products, which Dataverse keys by
``productnumber`` alone), it is read from the row instead: ``dataAreaId`` on F&O, and on Dataverse the
map's lookup of the company (products' ``msdyn_CompanyId``), expanded by the reader to the company's code.
"""

from __future__ import annotations

from collections.abc import Mapping

from dualbus.shared.maps import LookupMap, Side, TableMap, other_side

__all__ = ["RowCompanies"]

Row = Mapping[str, object]
_COMPANY_FIELD: dict[Side, str] = {"fo": "dataAreaId", "dataverse": "msdyn_company"}


class RowCompanies:
    """Reads the company of one map's rows, compared from its ``source`` side."""

    def __init__(self, table_map: TableMap, source: Side) -> None:
        self._target = other_side(source)
        self._lookup = _company_lookup(table_map)
        self._outside_key = _COMPANY_FIELD[source] in table_map.key_on(source) and (
            _COMPANY_FIELD[self._target] not in table_map.key_on(self._target)
        )

    def of_compared(self, side: Side, target_key: Mapping[str, object], row: Row) -> str | None:
        """The company of a ``side`` row whose key on the target side is ``target_key`` (None: of none)."""
        if self._outside_key:
            return self.of_row(side, row)
        value = target_key.get(_COMPANY_FIELD[self._target])
        return str(value).upper() if value is not None else None

    def of_row(self, side: Side, row: Row) -> str | None:
        """The company a row of ``side`` names itself, upper case; None when it names none."""
        if side == "fo":
            value = row.get(_COMPANY_FIELD["fo"])
        elif self._lookup is None:
            return None
        else:
            value = row.get(self._lookup.dataverse)
            if isinstance(value, Mapping):
                value = value.get(next(iter(self._lookup.key)))
        return value.upper() if isinstance(value, str) and value else None


def _company_lookup(table_map: TableMap) -> LookupMap | None:
    """The map's Dataverse lookup of the row's company: the one whose only key column F&O's company fills."""
    for lookup in table_map.lookups:
        if tuple(lookup.key.values()) == (_COMPANY_FIELD["fo"],):
            return lookup
    return None
