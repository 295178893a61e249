"""The tables the Dataverse twin serves, as data: adding a table is one entry in ``TABLES``.

Names follow docs/entities.md: entity set names, logical names, primary id columns, alternate keys and the
lookups (single-valued navigation properties) that ``@odata.bind`` sets. Rows accept any other column; only
the declared maximum lengths and required columns are checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = ["TABLES", "TableDef", "lookup_value_column", "table_by_set"]


def lookup_value_column(navigation_property: str) -> str:
    """The read-only column a lookup's GUID shows up in when read, e.g. ``_msdyn_company_value``."""
    return f"_{navigation_property}_value"


@dataclass(frozen=True, slots=True)
class TableDef:
    """One Dataverse table: how it is addressed, keyed, related and constrained."""

    entity_set: str
    logical_name: str
    primary_id: str
    alternate_key: tuple[str, ...] = ()
    # Navigation property (the lookup's logical name) -> entity set of the table it points at.
    lookups: Mapping[str, str] = field(default_factory=dict)
    max_lengths: Mapping[str, int] = field(default_factory=dict)
    # Required columns and the value a create gets when it leaves them out.
    defaults: Mapping[str, Any] = field(default_factory=dict)

    def key_column(self, key_attribute: str) -> str:
        """The stored column behind an alternate-key attribute (a lookup key is stored as ``_x_value``)."""
        return lookup_value_column(key_attribute) if key_attribute in self.lookups else key_attribute

    def key_columns(self) -> tuple[str, ...]:
        """The stored columns of the alternate key, in key order."""
        return tuple(self.key_column(name) for name in self.alternate_key)


def _company_scoped(
    entity_set: str,
    logical_name: str,
    natural_key: str,
    *,
    lookups: Mapping[str, str] | None = None,
    max_lengths: Mapping[str, int] | None = None,
) -> TableDef:
    """A table keyed by its company (a lookup to cdm_companies) plus a natural key column."""
    return TableDef(
        entity_set=entity_set,
        logical_name=logical_name,
        primary_id=f"{logical_name}id",
        alternate_key=("msdyn_company", natural_key),
        lookups={"msdyn_company": "cdm_companies", **(lookups or {})},
        max_lengths=dict(max_lengths or {}),
    )


_DEFINITIONS: tuple[TableDef, ...] = (
    TableDef(
        entity_set="cdm_companies",
        logical_name="cdm_company",
        primary_id="cdm_companyid",
        alternate_key=("cdm_companycode",),
        max_lengths={"cdm_name": 100},
    ),
    TableDef(
        entity_set="transactioncurrencies",
        logical_name="transactioncurrency",
        primary_id="transactioncurrencyid",
        alternate_key=("isocurrencycode",),
        max_lengths={"currencyname": 100, "currencysymbol": 10},
        defaults={"exchangerate": 1},
    ),
    TableDef(
        entity_set="msdyn_internalorganizations",
        logical_name="msdyn_internalorganization",
        primary_id="msdyn_internalorganizationid",
        alternate_key=("msdyn_id",),
    ),
    TableDef(
        entity_set="msdyn_internalorganizationhierarchytypes",
        logical_name="msdyn_internalorganizationhierarchytype",
        primary_id="msdyn_internalorganizationhierarchytypeid",
        alternate_key=("msdyn_name",),
    ),
    TableDef(
        entity_set="msdyn_internalorganizationhierarchypurposes",
        logical_name="msdyn_internalorganizationhierarchypurpose",
        primary_id="msdyn_internalorganizationhierarchypurposeid",
        alternate_key=("msdyn_hierarchytype", "msdyn_hierarchypurpose"),
    ),
    TableDef(
        entity_set="msdyn_internalorganizationhierarchies",
        logical_name="msdyn_internalorganizationhierarchy",
        primary_id="msdyn_internalorganizationhierarchyid",
        alternate_key=("msdyn_hierarchytype", "msdyn_childorganization"),
    ),
    _company_scoped(
        "msdyn_customergroups", "msdyn_customergroup", "msdyn_groupid", max_lengths={"msdyn_description": 100}
    ),
    _company_scoped(
        "accounts",
        "account",
        "accountnumber",
        lookups={
            "msdyn_customergroupid": "msdyn_customergroups",
            "transactioncurrencyid": "transactioncurrencies",
        },
        max_lengths={
            "name": 160,
            "accountnumber": 20,
            "address1_line1": 250,
            "address1_city": 80,
            "address1_postalcode": 20,
            "address1_country": 80,
            "telephone1": 50,
            "emailaddress1": 100,
        },
    ),
    _company_scoped(
        "msdyn_vendorgroups", "msdyn_vendorgroup", "msdyn_vendorgroup", max_lengths={"msdyn_description": 100}
    ),
    _company_scoped(
        "msdyn_vendors",
        "msdyn_vendor",
        "msdyn_vendoraccountnumber",
        lookups={
            "msdyn_vendorgroupid": "msdyn_vendorgroups",
            "transactioncurrencyid": "transactioncurrencies",
        },
        max_lengths={"msdyn_vendorname": 160, "msdyn_vendoraccountnumber": 20},
    ),
    _company_scoped(
        "products",
        "product",
        "productnumber",
        lookups={"transactioncurrencyid": "transactioncurrencies"},
        max_lengths={"name": 100, "productnumber": 100},
    ),
)

TABLES: Mapping[str, TableDef] = MappingProxyType({table.entity_set: table for table in _DEFINITIONS})


def table_by_set(entity_set: str) -> TableDef | None:
    """The table served under ``entity_set``, or None when there is none."""
    return TABLES.get(entity_set)
