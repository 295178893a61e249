"""The kinds of record the change stream touches, and how each is addressed on either side.

Each kind follows one two-way table map: organisation customers (CustomersV3 ↔ accounts), person customers
(CustomersV3 ↔ sellable contacts), vendors (VendorsV2 ↔ msdyn_vendors) and vendors' contact persons
(CDSContactPersonsV2 ↔ contacts). F&O addresses a row by its entity's keys (``d365/fo``), Dataverse by the
table's alternate key: the company lookup and one natural column.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

from dualbus.d365 import fo_entities

__all__ = ["KINDS", "Kind", "RecordKind", "RecordRef", "kind_of", "record_ref"]

Kind = Literal["customer", "person", "vendor", "contact"]


@dataclass(frozen=True, slots=True)
class RecordKind:
    """Which map a kind follows (``shape``), its F&O entity, and the field Dataverse keys it by."""

    shape: str
    fo_entity: str
    number: str  # the F&O field whose value is the Dataverse key column's (``dv_key``)
    dv_key: str

    @property
    def fo_keys(self) -> tuple[str, ...]:
        """The entity's key fields after ``dataAreaId``."""
        return fo_entities()[self.fo_entity].keys[1:]


KINDS: Mapping[Kind, RecordKind] = MappingProxyType(
    {
        "customer": RecordKind("customers", "CustomersV3", "CustomerAccount", "accountnumber"),
        "person": RecordKind("customer_contacts", "CustomersV3", "CustomerAccount", "msdyn_contactpersonid"),
        "vendor": RecordKind("vendors", "VendorsV2", "VendorAccountNumber", "msdyn_vendoraccountnumber"),
        "contact": RecordKind(
            "vendor_contacts", "CDSContactPersonsV2", "ContactPersonId", "msdyn_contactpersonid"
        ),
    }
)


@dataclass(frozen=True, slots=True, order=True)
class RecordRef:
    """One record: its company (upper case), Dataverse natural id, and F&O key values after the company."""

    company: str
    number: str
    kind: Kind
    fo_key: tuple[str, ...]

    @property
    def vendor(self) -> str:
        """The vendor account a contact person belongs to (its last F&O key part)."""
        return self.fo_key[-1]


def kind_of(entity: str, row: Mapping[str, Any]) -> Kind | None:
    """The kind of an F&O row of ``entity``, or None when the stream does not touch such rows."""
    if entity == "CustomersV3":
        return "person" if row.get("PartyType") == "Person" else "customer"
    if entity == "VendorsV2":
        return "vendor"
    return (
        "contact"
        if entity == "CDSContactPersonsV2" and row.get("AssociatedContactType") == "Vendor"
        else None
    )


def record_ref(kind: Kind, row: Mapping[str, Any]) -> RecordRef:
    """The reference of an F&O-shaped row of ``kind``."""
    spec = KINDS[kind]
    fo_key = tuple(str(row[name]) for name in spec.fo_keys)
    return RecordRef(str(row["dataAreaId"]).upper(), str(row[spec.number]), kind, fo_key)
