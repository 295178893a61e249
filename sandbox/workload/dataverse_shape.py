"""The same master data in Dataverse's shape: entity sets, column names and ``@odata.bind`` lookups.

Tables and keys as in docs/entities.md. Lookups are bound by alternate key, which the Web API allows
(``"msdyn_company@odata.bind": "/cdm_companies(cdm_companycode='USMF')"``).
See https://learn.microsoft.com/power-apps/developer/data-platform/use-alternate-key-reference-record
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sandbox.workload.generate import Dataset

__all__ = [
    "account_from_customer",
    "company_bind",
    "currency_bind",
    "dataverse_reference",
    "to_dataverse",
    "vendor_from_vendor",
]

Row = dict[str, Any]


def company_bind(company_id: str) -> str:
    """The bind path of a company row by its code."""
    return f"/cdm_companies(cdm_companycode='{company_id.upper()}')"


def currency_bind(code: str) -> str:
    """The bind path of a currency row by its ISO code."""
    return f"/transactioncurrencies(isocurrencycode='{code}')"


def dataverse_reference(dataset: Dataset) -> dict[str, list[Row]]:
    """Companies, currencies and customer/vendor groups as Dataverse rows, in load order."""
    rows = dataset.rows
    return {
        "cdm_companies": [
            {"cdm_companycode": r["LegalEntityId"], "cdm_name": r["Name"]} for r in rows["LegalEntities"]
        ],
        "transactioncurrencies": [
            {
                "isocurrencycode": r["CurrencyCode"],
                "currencyname": r["Name"],
                "currencysymbol": r["Symbol"],
                "currencyprecision": _decimals(r["RoundingPrecision"]),
                "exchangerate": 1,
            }
            for r in rows["Currencies"]
        ],
        "msdyn_customergroups": [
            {
                "msdyn_groupid": r["CustomerGroupId"],
                "msdyn_description": r["Description"],
                "msdyn_company@odata.bind": company_bind(r["dataAreaId"]),
            }
            for r in rows["CustomerGroups"]
        ],
        "msdyn_vendorgroups": [
            {
                "msdyn_vendorgroup": r["VendorGroupId"],
                "msdyn_description": r["Description"],
                "msdyn_company@odata.bind": company_bind(r["dataAreaId"]),
            }
            for r in rows["VendorGroups"]
        ],
    }


# F&O's CustVendorBlocked values as the Dataverse option set of msdyn_creditonhold / msdyn_vendorhold.
_HOLD_OPTIONS = {"No": 0, "Invoice": 1, "All": 2, "Payment": 3, "Requisition": 4, "Never": 5}
_HOLD_OPTION_BASE = 192_350_000


def hold_option(status: object) -> int:
    """The Dataverse option value of an F&O on-hold status (``No`` when absent)."""
    return _HOLD_OPTION_BASE + _HOLD_OPTIONS.get(str(status or "No"), 0)


def account_from_customer(customer: Mapping[str, Any]) -> Row:
    """A CustomersV3 row as a Dataverse account, without the customer group (its key needs a GUID)."""
    return {
        # Relationship type 3 (Customer), which the customer map requires of an account.
        "customertypecode": 3,
        "accountnumber": customer["CustomerAccount"],
        "name": customer["OrganizationName"],
        "creditlimit": customer.get("CreditLimit"),
        "address1_line1": customer.get("AddressStreet"),
        "address1_city": customer.get("AddressCity"),
        "address1_postalcode": customer.get("AddressZipCode"),
        "address1_country": customer.get("AddressCountryRegionId"),
        "telephone1": customer.get("PrimaryContactPhone"),
        "emailaddress1": customer.get("PrimaryContactEmail"),
        "msdyn_creditonhold": hold_option(customer.get("OnHoldStatus")),
        "msdyn_company@odata.bind": company_bind(str(customer["dataAreaId"])),
        "transactioncurrencyid@odata.bind": currency_bind(str(customer["SalesCurrencyCode"])),
    }


def vendor_from_vendor(vendor: Mapping[str, Any]) -> Row:
    """A VendorsV2 row as a Dataverse msdyn_vendor, without the vendor group (its key needs a GUID)."""
    return {
        "msdyn_vendoraccountnumber": vendor["VendorAccountNumber"],
        "msdyn_vendorname": vendor["VendorOrganizationName"],
        "msdyn_address1_line1": vendor.get("AddressStreet"),
        "msdyn_address1_city": vendor.get("AddressCity"),
        "msdyn_address1_postalcode": vendor.get("AddressZipCode"),
        "msdyn_address1_country": vendor.get("AddressCountryRegionId"),
        "msdyn_emailaddress": vendor.get("PrimaryEmailAddress"),
        "msdyn_telephone": vendor.get("PrimaryPhoneNumber"),
        "msdyn_vendorhold": hold_option(vendor.get("OnHoldStatus")),
        "msdyn_company@odata.bind": company_bind(str(vendor["dataAreaId"])),
        "transactioncurrencyid@odata.bind": currency_bind(str(vendor["CurrencyCode"])),
    }


def to_dataverse(kind: str, row: Mapping[str, Any]) -> Row:
    """An F&O-shaped customer or vendor in its Dataverse table's shape."""
    return vendor_from_vendor(row) if kind == "vendor" else account_from_customer(row)


def _decimals(rounding_unit: float) -> int:
    """The number of decimals of a rounding unit such as 0.01 (2) or 1 (0)."""
    decimals = 0
    while round(rounding_unit * 10**decimals, 9) < 1:
        decimals += 1
    return decimals
