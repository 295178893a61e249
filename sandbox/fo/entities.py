"""The F&O data entities the twin serves, as data: adding an entity is adding one entry.

Names, keys and core fields follow ``docs/entities.md``. Company-specific entities carry ``dataAreaId`` as
their first key field, as the real OData endpoint does (``/data/CustomersV3(dataAreaId='usmf',...)``).
See https://learn.microsoft.com/dynamics365/fin-ops-core/dev-itpro/data-entities/odata
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = ["ENTITIES", "EntityDef", "entity_named"]

_ON_HOLD = ("No", "Invoice", "All", "Payment", "Requisition", "Never")
_PARTY_TYPES = ("Organization", "Person")


@dataclass(frozen=True, slots=True)
class EntityDef:
    """One OData data entity: its public collection name, keys, column limits and enum domains."""

    name: str
    keys: tuple[str, ...]
    max_lengths: Mapping[str, int] = field(default_factory=dict)
    enums: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def company_specific(self) -> bool:
        """True when rows belong to one legal entity (the first key is ``dataAreaId``)."""
        return self.keys[0] == "dataAreaId"


_DEFINITIONS = (
    EntityDef("LegalEntities", ("LegalEntityId",), {"LegalEntityId": 4, "Name": 60}),
    EntityDef("Currencies", ("CurrencyCode",), {"CurrencyCode": 3, "Name": 60, "Symbol": 5}),
    EntityDef("OperatingUnits", ("OperatingUnitNumber",), {"Name": 100}),
    EntityDef("OrganizationHierarchyTypes", ("Name",), {"Name": 60}),
    EntityDef("OrganizationHierarchyPurposes", ("HierarchyType", "HierarchyPurpose")),
    EntityDef("OrganizationHierarchiesPublished", ("HierarchyType", "ChildOrganizationPartyNumber")),
    EntityDef(
        "CustomerGroups", ("dataAreaId", "CustomerGroupId"), {"CustomerGroupId": 10, "Description": 60}
    ),
    EntityDef(
        "CustomersV3",
        ("dataAreaId", "CustomerAccount"),
        {"CustomerAccount": 20, "OrganizationName": 100, "SalesCurrencyCode": 3},
        {"PartyType": _PARTY_TYPES, "OnHoldStatus": _ON_HOLD},
    ),
    EntityDef("VendorGroups", ("dataAreaId", "VendorGroupId"), {"VendorGroupId": 10, "Description": 60}),
    EntityDef(
        "VendorsV2",
        ("dataAreaId", "VendorAccountNumber"),
        {"VendorAccountNumber": 20, "VendorOrganizationName": 100, "CurrencyCode": 3},
        {"VendorPartyType": _PARTY_TYPES, "OnHoldStatus": _ON_HOLD},
    ),
    EntityDef(
        "ReleasedDistinctProductsV2",
        ("dataAreaId", "ItemNumber"),
        {"ItemNumber": 20, "ProductName": 60, "SalesCurrencyCode": 3},
        {"ProductType": ("Item", "Service")},
    ),
)

ENTITIES: Mapping[str, EntityDef] = MappingProxyType({d.name: d for d in _DEFINITIONS})


def entity_named(name: str) -> EntityDef | None:
    """The definition of the entity with this public collection name, or None."""
    return ENTITIES.get(name)
