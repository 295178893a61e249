"""What a producer reads from one source table, derived from a table map.

A producer needs less than the map: which entity or table to read, the natural key in the source's names,
which fields the event's ``data`` carries (the full mapped state, in the source's field names; for a delete,
what names the row on the other side), which company a row belongs to, and which rows the map takes at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from dualbus.shared.envelope import Origin
from dualbus.shared.errors import ConfigError
from dualbus.shared.maps import Side, TableMap, delete_fields, map_order, natural_key, passes_source_filter

__all__ = ["SourceTable", "source_tables"]

# The company column of company-specific rows on each side (an F&O field, a Dataverse lookup).
_COMPANY_FIELD = {Origin.FO: "dataAreaId", Origin.DATAVERSE: "msdyn_company"}


@dataclass(frozen=True, slots=True)
class SourceTable:
    """One map seen from its source: the table, its key, the carried fields and the row filter."""

    table_map: TableMap
    origin: Origin

    @property
    def side(self) -> Side:
        """The source side's name as the maps spell it."""
        return self.origin.side

    @property
    def area(self) -> str:
        """The area (and so the topic) the map's events go to."""
        return self.table_map.area

    @property
    def name(self) -> str:
        """The F&O public collection or the Dataverse entity set read."""
        return self.table_map.table_on(self.side)

    @property
    def key_fields(self) -> tuple[str, ...]:
        """The natural key's fields in the source's names."""
        return self.table_map.key_on(self.side)

    @property
    def company_field(self) -> str:
        """The source's company field (``dataAreaId``, ``msdyn_company``)."""
        return _COMPANY_FIELD[self.origin]

    @property
    def company_specific(self) -> bool:
        """Whether rows belong to one company (the key holds the company field)."""
        return self.company_field in self.key_fields

    @property
    def carried_fields(self) -> tuple[str, ...]:
        """Every source field the map reads towards the other side, and its filter's fields.

        The filter's fields travel too, so a consumer can check the source filter from the event alone.
        """
        return self.table_map.carried_from(self.side)

    @property
    def delete_fields(self) -> tuple[str, ...]:
        """What a delete carries beside the key, so that the consumer can name the row on the other side."""
        return delete_fields(self.table_map, self.side)

    def delete_data(self, row: Mapping[str, object]) -> dict[str, object]:
        """The delete values ``row`` holds; a null, or F&O's empty string (its "no value"), names nothing, so
        it is left out."""
        return {name: row[name] for name in self.delete_fields if row.get(name) not in (None, "")}

    def takes(self, row: Mapping[str, object]) -> bool:
        """Whether the map takes this row at all (its source filter, e.g. organisations only)."""
        return passes_source_filter(self.table_map, self.side, row)

    def key_of(self, row: Mapping[str, object]) -> dict[str, str | int]:
        """The row's natural key, e.g. ``{"dataAreaId": "usmf", "CustomerAccount": "C-1"}``."""
        key = natural_key(self.table_map, self.side, row)
        # Floats and bools are no keys in either system; the envelope's key takes text and integers.
        return {
            name: value if isinstance(value, int) and not isinstance(value, bool) else str(value)
            for name, value in key.items()
        }

    def company_of(self, key: Mapping[str, object]) -> str | None:
        """The company of a row from its natural key (upper case, as F&O's legal entity ids), or None."""
        value = key.get(self.company_field)
        return str(value).upper() if value is not None else None

    def data_of(self, row: Mapping[str, object]) -> dict[str, object]:
        """The carried fields of a row (absent ones left out, so the consumer does not clear them)."""
        return {name: row[name] for name in self.carried_fields if name in row}


def source_tables(
    maps: Iterable[TableMap], origin: Origin, areas: Iterable[str] | None = None
) -> list[SourceTable]:
    """The maps that read from ``origin``, in initial-sync order, limited to ``areas`` when given."""
    target = origin.other.side
    ordered = map_order(maps)
    wanted = set(areas) if areas is not None else None
    if wanted is not None:
        unknown = wanted - {m.area for m in ordered}
        if unknown:
            raise ConfigError(f"unknown area(s): {', '.join(sorted(unknown))}")
    return [
        SourceTable(table_map=m, origin=origin)
        for m in ordered
        if m.carries(target) and (wanted is None or m.area in wanted)
    ]
