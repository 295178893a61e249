"""What a person changes on a record, in F&O's terms: only fields the record's map carries both ways.

Customers: name, credit limit, on-hold status, phone, e-mail, delivery address (customers map). Person
customers: given name, surname, address (customer_contacts). Vendors: name, credit limit, on-hold status,
phone, e-mail, address (vendors). Contact persons: surname, phone, e-mail, job title, department
(vendor_contacts). The stream writes the same values as Dataverse columns for a change made there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from dualbus.sandbox.workload.kinds import Kind
from dualbus.sandbox.workload.places import PLACES
from dualbus.sandbox.workload.records import CUSTOMER_HOLDS, VENDOR_HOLDS, RecordFactory, Row
from dualbus.sandbox.workload.reference import Company

__all__ = ["EDITS", "long_email"]

Edit = Callable[[RecordFactory, Company], Row]
_JOBS = ("Account manager", "Buyer", "Controller", "Purchasing manager", "Logistics coordinator")
_UNITS = ("Sales", "Purchasing", "Finance", "Logistics")
# Domain labels a long, valid address is padded with (each far below DNS's 63-character label limit).
_LABELS = ("billing", "invoices", "accounts-payable", "finance-department", "head-office", "shared-services")


def long_email(factory: RecordFactory, name: str) -> str:
    """A valid e-mail address of 101 to about 180 characters: over Dataverse's 100, within F&O's 255."""
    target = factory.rng.randint(101, 160)
    labels = [factory.email(name).split("@")[1].removesuffix(".example.com")]
    while len(address := f"accounts.receivable@{'.'.join(labels)}.example.com") < target:
        labels.append(_LABELS[len(labels) % len(_LABELS)])
    return address


def _name(field: str) -> Edit:
    return lambda f, c: {field: f.organisation_name(c.country)}


def _phone(field: str) -> Edit:
    return lambda f, c: {field: f.phone(c.country)}


def _email(field: str) -> Edit:
    return lambda f, c: {field: f.email(f.organisation_name(c.country))}


def _hold(holds: tuple[str, ...]) -> Edit:
    return lambda f, _c: {"OnHoldStatus": f.rng.choice(holds)}


def _credit(f: RecordFactory, _c: Company) -> Row:
    return {"CreditLimit": f.credit_limit()}


def _address(prefix: str) -> Edit:
    return lambda f, c: f.address(c.country, prefix)


def _surname(field: str) -> Edit:
    # Surnames change at marriage; a given name is corrected now and then.
    return lambda f, c: {field: f.rng.choice(PLACES[c.country].last_names)}


def _given(field: str) -> Edit:
    return lambda f, c: {field: f.rng.choice(PLACES[c.country].first_names)}


def _choice(field: str, values: tuple[str, ...]) -> Edit:
    return lambda f, _c: {field: f.rng.choice(values)}


EDITS: Mapping[Kind, tuple[Edit, ...]] = MappingProxyType(
    {
        "customer": (
            _name("OrganizationName"),
            _credit,
            _hold(CUSTOMER_HOLDS),
            _phone("PrimaryContactPhone"),
            _email("PrimaryContactEmail"),
            _address("DeliveryAddress"),
        ),
        "person": (_surname("PersonLastName"), _given("PersonFirstName"), _address("Address")),
        "vendor": (
            _name("VendorOrganizationName"),
            _credit,
            _hold(VENDOR_HOLDS),
            _phone("PrimaryPhoneNumber"),
            _email("PrimaryEmailAddress"),
            _address("Address"),
        ),
        "contact": (
            _surname("LastName"),
            _phone("PrimaryPhoneNumber"),
            _email("PrimaryEmailAddress"),
            _choice("EmploymentProfession", _JOBS),
            _choice("EmploymentDepartment", _UNITS),
        ),
    }
)
