"""The kinds of record the change stream touches, with their names on each side (see docs/entities.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

__all__ = ["KINDS", "Kind", "RecordKind"]

Kind = Literal["customer", "vendor"]


@dataclass(frozen=True, slots=True)
class RecordKind:
    """Where one kind of record lives in F&O and in Dataverse, and which columns the stream reads."""

    fo_entity: str
    fo_key: str
    fo_name: str
    fo_currency: str
    dv_set: str
    dv_key: str
    dv_phone: str


KINDS: Mapping[Kind, RecordKind] = MappingProxyType(
    {
        "customer": RecordKind(
            "CustomersV3",
            "CustomerAccount",
            "OrganizationName",
            "SalesCurrencyCode",
            "accounts",
            "accountnumber",
            "telephone1",
        ),
        "vendor": RecordKind(
            "VendorsV2",
            "VendorAccountNumber",
            "VendorOrganizationName",
            "CurrencyCode",
            "msdyn_vendors",
            "msdyn_vendoraccountnumber",
            "msdyn_telephone",
        ),
    }
)
