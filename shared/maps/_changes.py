"""What the transform engine produces: a change ready for one side's API."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import quote

from dualbus.shared.maps._fields import Scalar

__all__ = ["DataverseChange", "FoChange", "LookupBinding", "key_text", "odata_literal"]

_KEEP = "'=,"  # OData key syntax; everything else that is not URL-safe gets percent-encoded


def key_text(parts: Iterable[tuple[str, str]]) -> str:
    """A key segment ``(column=literal,...)``, percent-encoding what would break the URL (spaces, '/')."""
    return f"({quote(','.join(f'{column}={literal}' for column, literal in parts), safe=_KEEP)})"


def odata_literal(value: Scalar) -> str:
    """A key value written as an OData URL literal: strings quoted with ``'`` doubled, the rest bare."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return repr(value)


@dataclass(frozen=True, slots=True)
class LookupBinding:
    """A Dataverse lookup to set: the navigation property, the target table and its alternate-key values."""

    navigation: str
    table: str
    # None clears the lookup (the source row refers to nothing).
    key: Mapping[str, Scalar] | None

    def odata_bind(self) -> str | None:
        """The ``@odata.bind`` reference, e.g. ``/cdm_companies(cdm_companycode='USMF')``."""
        if self.key is None:
            return None
        return f"/{self.table}{key_text((c, odata_literal(v)) for c, v in self.key.items())}"

    def natural_value(self) -> Scalar | None:
        """The single key value of a lookup to a table with a one-column key (company, currency)."""
        if self.key is None or len(self.key) != 1:
            return None
        return next(iter(self.key.values()))


@dataclass(frozen=True, slots=True)
class DataverseChange:
    """A row to upsert into a Dataverse table, by its alternate key."""

    map_name: str
    target: str
    key: Mapping[str, Scalar]
    payload: Mapping[str, Scalar | None]
    lookups: tuple[LookupBinding, ...] = field(default=())

    def body(self) -> dict[str, object]:
        """The Web API request body: mapped columns plus one ``<navigation>@odata.bind`` per lookup."""
        body: dict[str, object] = dict(self.payload)
        for binding in self.lookups:
            body[f"{binding.navigation}@odata.bind"] = binding.odata_bind()
        return body

    def as_record(self) -> dict[str, object]:
        """The row as the Web API returns it with each lookup expanded to the target's key columns."""
        record: dict[str, object] = dict(self.payload)
        for binding in self.lookups:
            record[binding.navigation] = None if binding.key is None else dict(binding.key)
        return record


@dataclass(frozen=True, slots=True)
class FoChange:
    """A row to upsert into an F&O data entity, by its natural key; lookups arrive as plain values."""

    map_name: str
    target: str
    key: Mapping[str, Scalar]
    payload: Mapping[str, Scalar | None]
