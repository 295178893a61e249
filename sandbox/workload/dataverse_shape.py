"""The same data in Dataverse's shape: real columns per the table maps, lookups bound with ``@odata.bind``.

A lookup is bound by the target's alternate key, ``"msdyn_company@odata.bind":
"/cdm_companies(cdm_companycode='USMF')"``. Where that key holds a lookup itself (most company-striped
tables are keyed by ``msdyn_company`` and a code), the key names the lookup's value property and the
company row's GUID, the documented form ``/msdyn_customergroups(_msdyn_company_value=<guid>,
msdyn_groupid='10')`` (use-alternate-key-reference-record.md:
https://learn.microsoft.com/power-apps/developer/data-platform/use-alternate-key-reference-record). So
company GUIDs must be known first: the seed gives companies fixed ids (``company_ids``), a stream looks them
up. Rows are addressed the same way (``accounts(_msdyn_company_value=<guid>,accountnumber='US-00001')``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from dualbus.d365 import dataverse_tables, lookup_value_column
from dualbus.sandbox.workload.dataverse_columns import Bind, Shape
from dualbus.sandbox.workload.dataverse_extras import EXTRAS, fixed_id, uom_schedules
from dualbus.sandbox.workload.errors import WorkloadError
from dualbus.sandbox.workload.generate import Dataset
from dualbus.sandbox.workload.master_shapes import MASTER_SHAPES
from dualbus.sandbox.workload.reference import Company
from dualbus.sandbox.workload.reference_shapes import REFERENCE_SHAPES

__all__ = [
    "SHAPES",
    "CompanyIds",
    "bind_path",
    "company_id",
    "company_ids",
    "dataverse_master",
    "dataverse_reference",
    "key_segment",
    "literal",
    "shape_row",
]

Row = dict[str, Any]
# Company code (upper case) -> the cdm_companies row's id.
CompanyIds = Mapping[str, str]
BIND = "@odata.bind"
SHAPES: Mapping[str, Shape] = MappingProxyType({s.name: s for s in (*REFERENCE_SHAPES, *MASTER_SHAPES)})


def company_ids(companies: Iterable[Company]) -> dict[str, str]:
    """The fixed cdm_companyid the seed gives each company, by company code."""
    return {c.id: fixed_id("cdm_companies", c.id) for c in companies}


def literal(value: object) -> str:
    """An OData URL literal: a quoted string (quotes doubled), ``true``/``false`` or a number."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def key_segment(table: str, key: Sequence[tuple[str, object]], companies: CompanyIds) -> str:
    """``(column=value,...)`` addressing a row of ``table`` by its alternate key; a company lookup by GUID."""
    columns = dataverse_tables()[table].columns
    parts = []
    for column, value in key:
        if not columns[column].is_lookup:
            parts.append(f"{column}={literal(value)}")
            continue
        if set(columns[column].targets.values()) != {"cdm_companies"}:
            raise WorkloadError(f"{table}.{column}: only company lookups inside keys are resolved")
        parts.append(f"{lookup_value_column(column)}={company_id(companies, value)}")
    return f"({','.join(parts)})"


def company_id(companies: CompanyIds, code: object) -> str:
    """The cdm_companies id of a company code (any case); WorkloadError when it is unknown."""
    found = companies.get(str(code).upper())
    if found is None:
        raise WorkloadError(f"company {code} is not in Dataverse: seed or sync the companies first")
    return found


def bind_path(bind: Bind, row: Mapping[str, Any], companies: CompanyIds) -> str | None:
    """The ``@odata.bind`` value of ``bind`` for an F&O row; None when a key value is empty."""
    values = [row.get(fo) for _, fo in bind.key]
    if any(v is None or v == "" for v in values):
        return None
    # Company codes read as F&O answers dataAreaId (lower case); Dataverse keeps them upper case.
    key = [
        (c, str(v).upper() if c == "cdm_companycode" else v)
        for (c, _), v in zip(bind.key, values, strict=True)
    ]
    return f"/{bind.target}{key_segment(bind.target, key, companies)}"


def shape_row(shape: Shape, row: Mapping[str, Any], companies: CompanyIds, *, create: bool = True) -> Row:
    """The Dataverse columns of an F&O row (or of changed fields); ``create`` adds constants and extras."""
    out: Row = {}
    for column in shape.columns:
        if column.fo in row:
            out[column.dv] = _converted(shape, column.fo, column.values, row[column.fo])
    for bind in shape.binds:
        if all(fo in row for _, fo in bind.key):
            out[f"{bind.navigation}{BIND}"] = bind_path(bind, row, companies)
    if create:
        out |= dict(shape.constants)
        extra = EXTRAS.get(shape.table)
        out |= extra(row, companies) if extra is not None else {}
    return out


def _converted(shape: Shape, field: str, values: Mapping[Any, Any] | None, value: object) -> object:
    if values is None or value is None:
        return value
    if value not in values:
        raise WorkloadError(f"{shape.name}: {field}={value!r} has no Dataverse value in the map")
    return values[value]


def _tables(dataset: Dataset, names: Iterable[str], companies: CompanyIds) -> dict[str, list[Row]]:
    tables: dict[str, list[Row]] = {}
    for name in names:
        shape = SHAPES[name]
        rows = [shape_row(shape, r, companies) for r in dataset.rows[shape.fo_entity] if shape.takes(r)]
        tables.setdefault(shape.table, []).extend(rows)
    return tables


def dataverse_reference(dataset: Dataset) -> dict[str, list[Row]]:
    """Companies (with their fixed ids), currencies, organisation, units, terms and groups, in load order."""
    companies = company_ids(dataset.companies)
    ordered: dict[str, list[Row]] = {}
    for name, rows in _tables(dataset, (s.name for s in REFERENCE_SHAPES), companies).items():
        if name == "uoms":
            # Units belong to a unit group, and a unit binds its base unit: both must exist first.
            ordered["uomschedules"] = uom_schedules()
            rows.sort(key=lambda row: f"baseuom{BIND}" in row)
        ordered[name] = rows
    return ordered


def dataverse_master(dataset: Dataset, companies: CompanyIds | None = None) -> dict[str, list[Row]]:
    """Accounts, vendors, contacts and products, as an initial sync would have made them, in load order."""
    ids = companies if companies is not None else company_ids(dataset.companies)
    return _tables(dataset, (s.name for s in MASTER_SHAPES), ids)
