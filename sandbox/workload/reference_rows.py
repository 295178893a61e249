"""The reference data as F&O rows, by OData entity set: what every customer, vendor and product refers to.

Global entities (Currencies, LegalEntities, OperatingUnits, organisation hierarchies, UnitsOfMeasure) come
once; company-specific ones (PaymentTerms, CustomerGroups, VendorGroups) once per company, in lower case
``dataAreaId`` as F&O answers it. Field names and enum members are those of ``d365/fo``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dualbus.sandbox.workload.places import PLACES
from dualbus.sandbox.workload.reference import (
    CURRENCIES,
    CUSTOMER_GROUPS,
    DEFAULT_TERM,
    DEPARTMENTS,
    HIERARCHY_TYPES,
    PAYMENT_TERMS,
    ROOT_UNIT,
    UNITS,
    VALID_FROM,
    VALID_TO,
    VENDOR_GROUPS,
    Company,
)

__all__ = ["department_name", "reference_rows"]

Row = dict[str, Any]
_ROOT_PARTY, _FIRST_DEPARTMENT_PARTY = 100, 201


def department_name(department: str, company: Company) -> str:
    """An operating unit's name, which must be unique in a hierarchy: ``Sales USMF``."""
    return f"{department} {company.id}"


def _yes(flag: bool) -> str:
    return "Yes" if flag else "No"


def _currencies() -> list[Row]:
    return [
        {
            "CurrencyCode": c.code,
            "Name": c.name,
            "Symbol": c.symbol,
            # F&O keeps the rounding rule as a unit (0.01); Dataverse counts decimals (currencyprecision).
            "GeneralRoundingRule": round(10.0**-c.precision, c.precision),
        }
        for c in CURRENCIES
    ]


def _legal_entities(companies: Sequence[Company]) -> list[Row]:
    return [
        {
            "LegalEntityId": c.id,
            "Name": c.name,
            "PartyNumber": c.party_number,
            "LanguageId": PLACES[c.country].language,
            "AddressCountryRegionId": c.country,
        }
        for c in companies
    ]


def _operating_units(companies: Sequence[Company]) -> list[Row]:
    root = {
        "OperatingUnitNumber": "000",
        "Name": ROOT_UNIT.name,
        "PartyNumber": f"{_ROOT_PARTY:09}",
        "OperatingUnitType": ROOT_UNIT.unit_type,
        "LanguageId": "en-us",
    }
    units = [root]
    for department, company in ((d, c) for c in companies for d in DEPARTMENTS):
        number = len(units)
        units.append(
            {
                "OperatingUnitNumber": f"{number:03}",
                "Name": department_name(department.name, company),
                "PartyNumber": f"{_FIRST_DEPARTMENT_PARTY + number - 1:09}",
                "OperatingUnitType": department.unit_type,
                "LanguageId": PLACES[company.country].language,
            }
        )
    return units


def _hierarchies(companies: Sequence[Company], units: Sequence[Row]) -> list[Row]:
    parties = {u["Name"]: u["PartyNumber"] for u in units}
    rows: list[Row] = []
    for kind in HIERARCHY_TYPES:
        rows.append(_link(kind.name, ROOT_UNIT.name, parties[ROOT_UNIT.name], None))
        for company in companies:
            rows.append(
                _link(
                    kind.name, company.name, company.party_number, (ROOT_UNIT.name, parties[ROOT_UNIT.name])
                )
            )
            for department in kind.departments:
                name = department_name(department, company)
                rows.append(_link(kind.name, name, parties[name], (company.name, company.party_number)))
    return rows


def _link(kind: str, child: str, child_party: str, parent: tuple[str, str] | None) -> Row:
    row: Row = {
        "HierarchyType": kind,
        "ChildOrganizationName": child,
        "ChildOrganizationPartyNumber": child_party,
        "validFrom": VALID_FROM,
        "validTo": VALID_TO,
    }
    if parent is not None:
        row["ParentOrganizationName"], row["ParentOrganizationPartyNumber"] = parent
    return row


def _units() -> list[Row]:
    return [
        {
            "UnitSymbol": u.symbol,
            "UnitDescription": u.description,
            "UnitClass": u.unit_class,
            "SystemOfUnits": u.system,
            "DecimalPrecision": u.decimals,
            "IsBaseUnit": _yes(u.base == u.symbol),
            "IsSystemUnit": "No",
        }
        for u in UNITS
    ]


def _payment_terms(company: Company) -> list[Row]:
    return [
        {
            "dataAreaId": company.id.lower(),
            "Name": t.name,
            "Description": t.description,
            "NumberOfDays": t.days,
            "NumberOfMonths": 0,
            "CutoffDayOfMonth": 0,
            "PaymentMethodType": t.method,
            "IsCashPayment": "No",
            "IsDefaultPaymentTerm": _yes(t.name == DEFAULT_TERM),
        }
        for t in PAYMENT_TERMS
    ]


def _customer_groups(company: Company) -> list[Row]:
    return [
        {
            "dataAreaId": company.id.lower(),
            "CustomerGroupId": g.id,
            "Description": g.description,
            "PaymentTermId": g.payment_term,
            "IsSalesTaxIncludedInPrice": "No",
        }
        for g in CUSTOMER_GROUPS
    ]


def _vendor_groups(company: Company) -> list[Row]:
    return [
        {
            "dataAreaId": company.id.lower(),
            "VendorGroupId": g.id,
            "Description": g.description,
            "DefaultPaymentTermName": g.payment_term,
        }
        for g in VENDOR_GROUPS
    ]


def reference_rows(companies: Sequence[Company]) -> dict[str, list[Row]]:
    """Every reference row for ``companies``, by entity set (in no particular order)."""
    units = _operating_units(companies)
    return {
        "Currencies": _currencies(),
        "LegalEntities": _legal_entities(companies),
        "OperatingUnits": units,
        "OrganizationHierarchyTypes": [{"Name": kind.name} for kind in HIERARCHY_TYPES],
        "OrganizationHierarchyPurposes": [
            {"HierarchyPurpose": k.purpose, "HierarchyType": k.name, "Immutable": "No", "SetAsDefault": "Yes"}
            for k in HIERARCHY_TYPES
        ],
        "OrganizationHierarchyPublished": _hierarchies(companies, units),
        "UnitsOfMeasure": _units(),
        "PaymentTerms": [row for c in companies for row in _payment_terms(c)],
        "CustomerGroups": [row for c in companies for row in _customer_groups(c)],
        "VendorGroups": [row for c in companies for row in _vendor_groups(c)],
    }
