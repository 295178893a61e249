"""Deterministic, realistic master data in F&O's data entity shape: the same seed gives the same data.

Everything is drawn from one seeded ``random.Random`` in a fixed order, never from the clock or from
``hash()``, so two runs with one seed produce identical rows (the determinism test checks it).
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sandbox.workload.reference import (
    COMPANIES,
    CURRENCIES,
    CUSTOMER_GROUPS,
    PLACES,
    PRODUCT_NOUNS,
    PRODUCT_WORDS,
    TRADE_NAMES,
    TRADE_WORDS,
    VENDOR_GROUPS,
    Company,
)

__all__ = ["Dataset", "RecordFactory", "generate"]

Row = dict[str, Any]
# Shares of customers and vendors in the company's own country, and of products that are services.
_HOME_CUSTOMERS, _HOME_VENDORS, _SERVICE_PRODUCTS = 0.8, 0.7, 0.15
_ON_HOLD = ("No", "No", "No", "No", "No", "Invoice", "Payment", "All")  # weighted: most are not on hold


@dataclass(slots=True)
class Dataset:
    """Rows per F&O entity set name, in load order (reference data first)."""

    seed: int
    companies: tuple[Company, ...]
    rows: dict[str, list[Row]] = field(default_factory=dict)

    def count(self) -> int:
        """How many rows in all."""
        return sum(len(r) for r in self.rows.values())


class RecordFactory:
    """Makes customers, vendors and products one at a time, numbering them per company."""

    def __init__(self, rng: random.Random, companies: Sequence[Company]) -> None:
        self.rng = rng
        self.companies = tuple(companies)
        self._next: dict[tuple[str, str], int] = {}

    def continue_after(self, dataset: Dataset) -> None:
        """Number new records after those already in ``dataset``, so that keys never collide."""
        kinds = {"CustomersV3": "customer", "VendorsV2": "vendor", "ReleasedDistinctProductsV2": "product"}
        for entity, kind in kinds.items():
            for row in dataset.rows.get(entity, []):
                key = (kind, str(row["dataAreaId"]).upper())
                self._next[key] = self._next.get(key, 0) + 1

    def number(self, kind: str, company: Company) -> int:
        """The next sequence number of ``kind`` (customer, vendor, product) in ``company``."""
        key = (kind, company.id)
        self._next[key] = self._next.get(key, 0) + 1
        return self._next[key]

    def organisation_name(self, country: str) -> str:
        """A plausible company name with the country's legal form, at most 60 characters."""
        rng, place = self.rng, PLACES[country]
        name = f"{rng.choice(TRADE_NAMES)} {rng.choice(TRADE_WORDS)} {rng.choice(place.legal_forms)}"
        return name[:60]

    def address(self, country: str) -> Row:
        """Street, city, postal code and country in the country's usual shape."""
        rng, place = self.rng, PLACES[country]
        number, street = rng.randint(1, 400), rng.choice(place.streets)
        line = f"{street} {number}" if place.street_first else f"{number} {street}"
        return {
            "AddressStreet": line,
            "AddressCity": rng.choice(place.cities),
            "AddressZipCode": self._pattern(place.postal),
            "AddressCountryRegionId": country,
        }

    def phone(self, country: str) -> str:
        """A phone number in the country's format."""
        return self._pattern(PLACES[country].phone)

    def email(self, name: str) -> str:
        """A contact address on a reserved example domain derived from the name."""
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40] or "contact"
        return f"{self.rng.choice(('info', 'sales', 'accounts', 'orders'))}@{slug}.example.com"

    def customer(self, company: Company) -> Row:
        """A new organisation customer of ``company`` in CustomersV3 shape."""
        rng = self.rng
        country = company.country if rng.random() < _HOME_CUSTOMERS else rng.choice(sorted(PLACES))
        name = self.organisation_name(country)
        return {
            "dataAreaId": company.id.lower(),
            "CustomerAccount": f"{company.id[:2]}-{self.number('customer', company):05}",
            "OrganizationName": name,
            "PartyType": "Organization",
            "CustomerGroupId": rng.choice(CUSTOMER_GROUPS[:5])[0],
            "SalesCurrencyCode": company.currency,
            "CreditLimit": float(rng.choice((0, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000))),
            **self.address(country),
            "PrimaryContactPhone": self.phone(country),
            "PrimaryContactEmail": self.email(name),
            "OnHoldStatus": rng.choice(_ON_HOLD),
        }

    def vendor(self, company: Company) -> Row:
        """A new organisation vendor of ``company`` in VendorsV2 shape."""
        rng = self.rng
        country = company.country if rng.random() < _HOME_VENDORS else rng.choice(sorted(PLACES))
        name = self.organisation_name(country)
        return {
            "dataAreaId": company.id.lower(),
            "VendorAccountNumber": f"{company.id[:2]}-V{self.number('vendor', company):05}",
            "VendorOrganizationName": name,
            "VendorPartyType": "Organization",
            "VendorGroupId": rng.choice(VENDOR_GROUPS)[0],
            "CurrencyCode": company.currency,
            **self.address(country),
            "PrimaryEmailAddress": self.email(name),
            "PrimaryPhoneNumber": self.phone(country),
            "OnHoldStatus": rng.choice(_ON_HOLD),
        }

    def product(self, company: Company) -> Row:
        """A new released product of ``company`` in ReleasedDistinctProductsV2 shape."""
        rng = self.rng
        service = rng.random() < _SERVICE_PRODUCTS
        number = self.number("product", company)
        item = f"{'S' if service else 'D'}{number:05}"
        name = (
            "Installation service" if service else f"{rng.choice(PRODUCT_WORDS)} {rng.choice(PRODUCT_NOUNS)}"
        )
        return {
            "dataAreaId": company.id.lower(),
            "ItemNumber": item,
            "ProductNumber": item,
            "ProductName": f"{name} {number}"[:60],
            "ProductType": "Service" if service else "Item",
            "SalesPrice": round(rng.uniform(5, 2500), 2),
            "SalesCurrencyCode": company.currency,
        }

    def _pattern(self, shape: str) -> str:
        rng = self.rng
        out = [
            str(rng.randint(0, 9)) if c == "#" else rng.choice("ABCDEFGHJKLMNPRSTUWXYZ") if c == "A" else c
            for c in shape
        ]
        return "".join(out)


def _reference_rows(companies: Sequence[Company]) -> dict[str, list[Row]]:
    return {
        "Currencies": [
            # F&O's rounding precision is a unit (0.01); Dataverse's currencyprecision counts decimals.
            {
                "CurrencyCode": c.code,
                "Name": c.name,
                "Symbol": c.symbol,
                "RoundingPrecision": round(10.0**-c.precision, c.precision),
            }
            for c in CURRENCIES
        ],
        "LegalEntities": [
            {
                "LegalEntityId": c.id,
                "Name": c.name[:60],
                "AddressCountryRegionId": c.country,
            }
            for c in companies
        ],
        "CustomerGroups": [
            {"dataAreaId": c.id.lower(), "CustomerGroupId": gid, "Description": text}
            for c in companies
            for gid, text in CUSTOMER_GROUPS
        ],
        "VendorGroups": [
            {"dataAreaId": c.id.lower(), "VendorGroupId": gid, "Description": text}
            for c in companies
            for gid, text in VENDOR_GROUPS
        ],
    }


def generate(
    seed: int,
    *,
    customers: int = 100,
    vendors: int = 20,
    products: int = 50,
    companies: Sequence[str] | None = None,
) -> Dataset:
    """A dataset: reference data, then ``customers``/``vendors``/``products`` spread over the companies."""
    chosen = tuple(c for c in COMPANIES if companies is None or c.id in companies)
    factory = RecordFactory(random.Random(seed), chosen)  # noqa: S311 - seeded test data, not secrets
    rows = _reference_rows(chosen)
    rows["CustomersV3"] = [factory.customer(factory.rng.choice(chosen)) for _ in range(customers)]
    rows["VendorsV2"] = [factory.vendor(factory.rng.choice(chosen)) for _ in range(vendors)]
    rows["ReleasedDistinctProductsV2"] = [
        factory.product(factory.rng.choice(chosen)) for _ in range(products)
    ]
    return Dataset(seed=seed, companies=chosen, rows=rows)
