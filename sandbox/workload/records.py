"""Makes master data one record at a time, in F&O's shape: customers, vendors, contact persons, products.

Every value is drawn from one seeded ``random.Random``, never from the clock or ``hash()``, so one seed makes
the same records. Records refer only to reference data that exists (``reference.py``): groups, payment terms
and currencies of their own company, units of measure, and, for a contact person, a vendor of its company.
E-mail addresses use the reserved ``example.com`` domains (RFC 2606), so nothing generated can reach anyone.
"""

from __future__ import annotations

import random
import re
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

from dualbus.sandbox.workload.places import PLACES, PRODUCT_NOUNS, PRODUCT_WORDS, TRADE_NAMES, TRADE_WORDS
from dualbus.sandbox.workload.reference import CUSTOMER_GROUPS, PAYMENT_TERMS, UNITS, VENDOR_GROUPS, Company

__all__ = ["CUSTOMER_HOLDS", "VENDOR_HOLDS", "RecordFactory", "Row"]

Row = dict[str, Any]
# Shares of records in the company's own country, and of products that are services.
_HOME_CUSTOMERS, _HOME_VENDORS, _SERVICE_PRODUCTS, _OTHER_TERMS = 0.8, 0.7, 0.15, 0.2
# Weighted: most records are not on hold. Customers are blocked by No/Invoice/All; vendors by all six that
# the maps' value maps carry (CustVendorBlocked's PurchOrder has no Dataverse option).
CUSTOMER_HOLDS = ("No", "No", "No", "No", "No", "Invoice", "All")
VENDOR_HOLDS = ("No", "No", "No", "No", "Invoice", "All", "Payment", "Requisition", "Never")
_CREDIT_LIMITS = (0, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000)
_PROFESSIONS = ("Account manager", "Sales representative", "Purchasing agent", "Controller", "Buyer")
_DEPARTMENTS = ("Sales", "Purchasing", "Finance", "Logistics", "Customer service")
_FIRST_PARTY = 1_000  # party numbers below are the reference data's (reference.py)
_DECIMALS = {u.symbol: u.decimals for u in UNITS}


class RecordFactory:
    """Numbers and fills new records per company; ``continue_after`` makes later numbers never collide."""

    def __init__(self, rng: random.Random, companies: Sequence[Company]) -> None:
        self.rng = rng
        self.companies = tuple(companies)
        self._next: dict[tuple[str, str], int] = {}
        self._party = _FIRST_PARTY
        # Numbers handed out per kind and company (and party numbers) since ``continue_after``; a lane of
        # ``lanes`` takes every ``lanes``-th number after the existing ones, starting at its own.
        self._made: dict[tuple[str, str], int] = {}
        self._parties_made = 0
        self._lane, self._lanes = 0, 1

    def continue_after(self, rows: Mapping[str, Sequence[Row]], *, lane: int = 0, lanes: int = 1) -> None:
        """Number new records after those in ``rows`` (by entity set), so that keys never collide; with
        ``lanes``, only in lane ``lane`` of them, so that factories of other lanes never make the same key."""
        kinds = {
            "CustomersV3": "customer",
            "VendorsV2": "vendor",
            "CDSContactPersonsV2": "contact",
            "CDSReleasedDistinctProducts": "product",
        }
        for entity, kind in kinds.items():
            for row in rows.get(entity, ()):
                key = (kind, str(row["dataAreaId"]).upper())
                self._next[key] = self._next.get(key, 0) + 1
        parties = [int(r["ContactPersonPartyNumber"]) for r in rows.get("CDSContactPersonsV2", ())]
        self._party = max([self._party, *parties])
        self._made, self._parties_made = {}, 0
        self._lane, self._lanes = lane, lanes

    def number(self, kind: str, company: Company) -> int:
        """The next sequence number of ``kind`` (customer, vendor, contact, product) in ``company``."""
        key = (kind, company.id)
        made = self._made.get(key, 0)
        self._made[key] = made + 1
        return self._next.get(key, 0) + made * self._lanes + self._lane + 1

    def party_number(self) -> str:
        """The next global party number, nine digits as F&O's number sequence pads it."""
        made = self._parties_made
        self._parties_made += 1
        return f"{self._party + made * self._lanes + self._lane + 1:09}"

    def organisation_name(self, country: str) -> str:
        """A plausible company name with the country's legal form, at most 60 characters."""
        rng, place = self.rng, PLACES[country]
        return f"{rng.choice(TRADE_NAMES)} {rng.choice(TRADE_WORDS)} {rng.choice(place.legal_forms)}"[:60]

    def person_name(self, country: str) -> tuple[str, str]:
        """A given name and a surname common in the country."""
        place = PLACES[country]
        return self.rng.choice(place.first_names), self.rng.choice(place.last_names)

    def address(self, country: str, prefix: str = "Address") -> Row:
        """Street, city, postal code and country (alpha-3 id and ISO alpha-2) under ``prefix`` field names."""
        rng, place = self.rng, PLACES[country]
        number, street = rng.randint(1, 400), rng.choice(place.streets)
        return {
            f"{prefix}Street": f"{street} {number}" if place.street_first else f"{number} {street}",
            f"{prefix}City": rng.choice(place.cities),
            f"{prefix}ZipCode": self.pattern(place.postal),
            f"{prefix}CountryRegionId": country,
            f"{prefix}CountryRegionISOCode": place.iso2,
        }

    def phone(self, country: str) -> str:
        """A phone number in the country's format."""
        return self.pattern(PLACES[country].phone)

    def email(self, name: str) -> str:
        """A contact address on a reserved example domain derived from the name (at most 61 characters)."""
        # Accents folded first: "Léo Müller" gives leo-muller, not l-o-m-ller.
        ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
        slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:40] or "contact"
        return f"{self.rng.choice(('info', 'sales', 'accounts', 'orders'))}@{slug}.example.com"

    def credit_limit(self) -> float:
        """A round credit limit."""
        return float(self.rng.choice(_CREDIT_LIMITS))

    def customer(self, company: Company) -> Row:
        """A new organisation customer of ``company`` in CustomersV3 shape, delivery address included."""
        country = self._country(company, _HOME_CUSTOMERS)
        name = self.organisation_name(country)
        return {
            **self._customer_base(company, country, CUSTOMER_GROUPS[:5]),
            "PartyType": "Organization",
            "OrganizationName": name,
            "CreditLimitIsMandatory": self.rng.choice(("No", "Yes")),
            **self.address(country, "DeliveryAddress"),
            "PrimaryContactEmail": self.email(name),
        }

    def person(self, company: Company) -> Row:
        """A new person customer (a consumer) of ``company`` in CustomersV3 shape, with primary address."""
        country = self._country(company, _HOME_CUSTOMERS)
        first, last = self.person_name(country)
        return {
            **self._customer_base(company, country, CUSTOMER_GROUPS[2:4]),
            "PartyType": "Person",
            "PersonFirstName": first,
            "PersonLastName": last,
            **self.address(country),
            "PrimaryContactEmail": self.email(f"{first} {last}"),
        }

    def vendor(self, company: Company) -> Row:
        """A new organisation vendor of ``company`` in VendorsV2 shape."""
        rng = self.rng
        country = self._country(company, _HOME_VENDORS)
        name, group = self.organisation_name(country), rng.choice(VENDOR_GROUPS)
        return {
            "dataAreaId": company.id.lower(),
            "VendorAccountNumber": f"{company.id[:2]}-V{self.number('vendor', company):05}",
            "VendorPartyType": "Organization",
            "VendorOrganizationName": name,
            "VendorGroupId": group.id,
            "CurrencyCode": company.currency,
            "DefaultPaymentTermsName": self._term(group.payment_term),
            "OnHoldStatus": rng.choice(VENDOR_HOLDS),
            "CreditLimit": self.credit_limit(),
            "IsOneTimeVendor": "No",
            **self.address(country),
            "PrimaryEmailAddress": self.email(name),
            "PrimaryPhoneNumber": self.phone(country),
            "LanguageId": PLACES[country].language,
        }

    def contact(self, company: Company, vendor_account: str) -> Row:
        """A new contact person of a vendor of ``company`` in CDSContactPersonsV2 shape."""
        rng = self.rng
        first, last = self.person_name(company.country)
        return {
            "dataAreaId": company.id.lower(),
            "ContactPersonPartyNumber": self.party_number(),
            "AssociatedContactType": "Vendor",
            "AssociatedContactNumber": vendor_account,
            # Not a customer account's shape: sellable contacts and vendor contacts share Dataverse's key.
            "ContactPersonId": f"{company.id[:2]}-CP{self.number('contact', company):05}",
            "FirstName": first,
            "LastName": last,
            "PrimaryEmailAddress": self.email(f"{first} {last}"),
            "PrimaryPhoneNumber": self.phone(company.country),
            "EmploymentProfession": rng.choice(_PROFESSIONS),
            "EmploymentDepartment": rng.choice(_DEPARTMENTS),
        }

    def product(self, company: Company) -> tuple[Row, Row]:
        """A released product of ``company``: its CDSReleasedDistinctProducts and ReleasedProductsV2 rows."""
        rng = self.rng
        service = rng.random() < _SERVICE_PRODUCTS
        number = self.number("product", company)
        common = self._product(company, f"{'S' if service else 'D'}{number:05}", service=service)
        words = (
            "Installation service" if service else f"{rng.choice(PRODUCT_WORDS)} {rng.choice(PRODUCT_NOUNS)}"
        )
        unit = common["SalesUnitSymbol"]
        distinct = {**common, "ProductName": f"{words} {number}"[:60], "CurrencyCode": company.currency}
        distinct |= {
            "IsStockedProduct": "No" if service else "Yes",
            "SalesUnitDecimalPrecision": _DECIMALS[unit],
        }
        released = {**common, "PurchaseUnitSymbol": unit if service else rng.choice((unit, "box"))}
        weight = 0.0 if service else round(rng.uniform(0.2, 40), 3)
        released |= {"PurchasePrice": common["UnitCost"], "NetProductWeight": weight, "IsPhantom": "No"}
        return distinct, released

    def _product(self, company: Company, item: str, *, service: bool) -> Row:
        # What both entities over one released product show alike.
        rng = self.rng
        unit = "h" if service else rng.choice(("ea", "ea", "pcs"))
        price = round(rng.uniform(5, 2500), 2)
        return {
            "dataAreaId": company.id.lower(),
            "ItemNumber": item,
            "ProductNumber": item,
            "ProductType": "Service" if service else "Item",
            "SalesPrice": price,
            "UnitCost": round(price * rng.uniform(0.4, 0.8), 2),
            "SalesUnitSymbol": unit,
            "InventoryUnitSymbol": unit,
        }

    def pattern(self, shape: str) -> str:
        """``shape`` with each ``#`` a random digit and each ``A`` a random capital."""
        rng = self.rng
        out = [
            str(rng.randint(0, 9)) if c == "#" else rng.choice("ABCDEFGHJKLMNPRSTUWXYZ") if c == "A" else c
            for c in shape
        ]
        return "".join(out)

    def _country(self, company: Company, home_share: float) -> str:
        rng = self.rng
        return company.country if rng.random() < home_share else rng.choice(sorted(PLACES))

    def _term(self, usual: str) -> str:
        # Most records keep their group's terms; some were negotiated otherwise.
        rng = self.rng
        return rng.choice(PAYMENT_TERMS).name if rng.random() < _OTHER_TERMS else usual

    def _customer_base(self, company: Company, country: str, groups: Sequence[Any]) -> Row:
        rng = self.rng
        group = rng.choice(groups)
        return {
            "dataAreaId": company.id.lower(),
            "CustomerAccount": f"{company.id[:2]}-{self.number('customer', company):05}",
            "CustomerGroupId": group.id,
            "SalesCurrencyCode": company.currency,
            "PaymentTerms": self._term(group.payment_term),
            "OnHoldStatus": rng.choice(CUSTOMER_HOLDS),
            "CreditLimit": self.credit_limit(),
            "PrimaryContactPhone": self.phone(country),
            "LanguageId": PLACES[country].language,
        }
