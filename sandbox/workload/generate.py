"""Deterministic, realistic master data in F&O's data entity shape: the same seed gives the same data.

Per company: payment terms, customer and vendor groups, organisation and person customers, vendors with
their contact persons, and released products (each as CDSReleasedDistinctProducts and ReleasedProductsV2,
two entities over the same released product, which dual-write maps to Dataverse's products and
msdyn_sharedproductdetails). Globally: currencies, legal entities, operating units, organisation hierarchy
types, purposes and published hierarchies, and units of measure. Rows come in ``LOAD_ORDER``, which puts
every entity after the ones its ``relations`` (``d365/fo``) point at, so they can be created in that order.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from dualbus.sandbox.workload.records import RecordFactory, Row
from dualbus.sandbox.workload.reference import COMPANIES, Company
from dualbus.sandbox.workload.reference_rows import reference_rows

__all__ = ["LOAD_ORDER", "Dataset", "generate"]

# A related entity before the entities that refer to it (a test checks this against d365's relations).
LOAD_ORDER: tuple[str, ...] = (
    "Currencies",
    "LegalEntities",
    "OperatingUnits",
    "OrganizationHierarchyTypes",
    "OrganizationHierarchyPurposes",
    "OrganizationHierarchyPublished",
    "UnitsOfMeasure",
    "PaymentTerms",
    "CustomerGroups",
    "VendorGroups",
    "CustomersV3",
    "VendorsV2",
    "CDSContactPersonsV2",
    "CDSReleasedDistinctProducts",
    "ReleasedProductsV2",
)
_PERSON_SHARE = 0.2  # of customers, consumers rather than organisations
_CONTACTS_PER_VENDOR = (1, 1, 2)


@dataclass(slots=True)
class Dataset:
    """Rows per F&O entity set name, in ``LOAD_ORDER``, and the companies they belong to."""

    seed: int
    companies: tuple[Company, ...]
    rows: dict[str, list[Row]] = field(default_factory=dict)

    def count(self) -> int:
        """How many rows in all."""
        return sum(len(r) for r in self.rows.values())


def _customers(factory: RecordFactory, count: int) -> list[Row]:
    rng, companies = factory.rng, factory.companies
    return [
        factory.person(company) if rng.random() < _PERSON_SHARE else factory.customer(company)
        for company in (rng.choice(companies) for _ in range(count))
    ]


def _contacts(factory: RecordFactory, vendors: Sequence[Row]) -> list[Row]:
    by_id = {c.id.lower(): c for c in factory.companies}
    return [
        factory.contact(by_id[vendor["dataAreaId"]], vendor["VendorAccountNumber"])
        for vendor in vendors
        for _ in range(factory.rng.choice(_CONTACTS_PER_VENDOR))
    ]


def generate(
    seed: int,
    *,
    customers: int = 100,
    vendors: int = 20,
    products: int = 50,
    companies: Sequence[str] | None = None,
) -> Dataset:
    """Reference data, then customers (a fifth persons), vendors (each with contacts), products."""
    chosen = tuple(c for c in COMPANIES if companies is None or c.id in companies)
    factory = RecordFactory(random.Random(seed), chosen)  # noqa: S311 - seeded test data, not secrets
    rows = reference_rows(chosen)
    rows["CustomersV3"] = _customers(factory, customers)
    rows["VendorsV2"] = [factory.vendor(factory.rng.choice(chosen)) for _ in range(vendors)]
    rows["CDSContactPersonsV2"] = _contacts(factory, rows["VendorsV2"])
    pairs = [factory.product(factory.rng.choice(chosen)) for _ in range(products)]
    rows["CDSReleasedDistinctProducts"] = [distinct for distinct, _ in pairs]
    rows["ReleasedProductsV2"] = [released for _, released in pairs]
    return Dataset(seed=seed, companies=chosen, rows={name: rows[name] for name in LOAD_ORDER})
