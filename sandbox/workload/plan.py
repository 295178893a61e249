"""Plan a live change stream: which record changes, on which side, how, and which changes must be refused.

The plan is a pure function of the dataset and the configuration (seeded ``random.Random``), so one seed
always yields the same sequence of changes. Customers change in F&O (``CustomersV3``) and in Dataverse
(``accounts``). Two kinds of change are valid where they are made but must be refused by the other side:

- ``unknown_currency`` (made in F&O): a currency code that exists nowhere, so Dataverse cannot resolve the
  ``transactioncurrencyid`` lookup;
- ``name_too_long`` (made in Dataverse): an account name of 101-160 characters, which Dataverse's
  ``name`` (160) takes but F&O's ``OrganizationName`` (100) does not.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Literal

from sandbox.workload.generate import Dataset, RecordFactory
from sandbox.workload.reference import Company

__all__ = ["Customer", "PlannedChange", "StreamConfig", "plan_changes"]

Side = Literal["fo", "dataverse"]
Op = Literal["create", "update", "delete", "concurrent"]
Customer = tuple[str, str]  # (company id upper case, customer account)
UNKNOWN_CURRENCY = "ZZZ"
_HALF = 0.5


@dataclass(frozen=True, slots=True)
class StreamConfig:
    """How fast, how long and what mix of changes to make; bounded by ``max_changes`` and ``duration``."""

    seed: int = 1
    rate: float = 20.0
    duration: float = 10.0
    max_changes: int = 1_000
    reject_share: float = 0.05
    concurrent_share: float = 0.05
    dataverse_share: float = 0.5
    create_share: float = 0.3
    delete_share: float = 0.1


@dataclass(frozen=True, slots=True)
class PlannedChange:
    """One planned change; a concurrent change carries both sides' values (``fo`` and ``dataverse``)."""

    op: Op
    side: Side
    key: Customer
    values: dict[str, Any] = field(default_factory=dict)
    other_values: dict[str, Any] = field(default_factory=dict)
    reject: str | None = None


class _Planner:
    def __init__(
        self, dataset: Dataset, config: StreamConfig, *, dataverse: bool, dataverse_seeded: bool
    ) -> None:
        self.rng = random.Random(config.seed)  # noqa: S311 - seeded test data, not secrets
        self.config = config
        self.dataverse = dataverse
        self.factory = RecordFactory(self.rng, dataset.companies)
        self.factory.continue_after(dataset)
        seeded = [
            (str(r["dataAreaId"]).upper(), str(r["CustomerAccount"])) for r in dataset.rows["CustomersV3"]
        ]
        self.known: dict[Side, list[Customer]] = {
            "fo": list(seeded),
            "dataverse": list(seeded) if dataverse_seeded else [],
        }
        self.companies = {c.id: c for c in dataset.companies}

    def next(self) -> PlannedChange:
        rng, config = self.rng, self.config
        if self.dataverse and rng.random() < config.concurrent_share:
            both = sorted(set(self.known["fo"]) & set(self.known["dataverse"]))
            if both:
                key = rng.choice(both)
                return PlannedChange("concurrent", "fo", key, self._fo_update(), self._dv_update())
        side: Side = "dataverse" if self.dataverse and rng.random() < config.dataverse_share else "fo"
        reject = rng.random() < config.reject_share
        roll = rng.random()
        if reject or roll < config.create_share or not self.known[side]:
            return self._create(side, reject=reject)
        key = rng.choice(self.known[side])
        if roll < config.create_share + config.delete_share:
            self.known[side].remove(key)
            return PlannedChange("delete", side, key)
        values = self._fo_update() if side == "fo" else self._dv_update()
        return PlannedChange("update", side, key, values)

    def _create(self, side: Side, *, reject: bool) -> PlannedChange:
        company = self.rng.choice(sorted(self.companies.values(), key=lambda c: c.id))
        row = self.factory.customer(company)
        key = (company.id, str(row["CustomerAccount"]))
        if not reject:
            self.known[side].append(key)
            return PlannedChange("create", side, key, row)
        if side == "fo":
            return PlannedChange(
                "create", side, key, {**row, "SalesCurrencyCode": UNKNOWN_CURRENCY}, reject="unknown_currency"
            )
        long_name = self._long_name(company)
        return PlannedChange(
            "create", side, key, {**row, "OrganizationName": long_name}, reject="name_too_long"
        )

    def _long_name(self, company: Company) -> str:
        base = f"{self.factory.organisation_name(company.country)} International Holding and Trading Group"
        length = self.rng.randint(101, 160)
        return (base + " Worldwide Operations Division" * 5)[:length]

    def _fo_update(self) -> dict[str, Any]:
        rng = self.rng
        choice = rng.randrange(3)
        if choice == 0:
            return {"CreditLimit": float(rng.choice((1_000, 7_500, 20_000, 60_000, 150_000)))}
        if choice == 1:
            return {"PrimaryContactPhone": f"+1 555-{rng.randint(100, 999)}-{rng.randint(1000, 9999)}"}
        return {"OnHoldStatus": rng.choice(("No", "Invoice", "All"))}

    def _dv_update(self) -> dict[str, Any]:
        rng = self.rng
        if rng.random() < _HALF:
            return {"creditlimit": float(rng.choice((2_500, 12_500, 40_000, 90_000)))}
        return {"telephone1": f"+1 555-{rng.randint(100, 999)}-{rng.randint(1000, 9999)}"}


def plan_changes(
    dataset: Dataset, config: StreamConfig, *, dataverse: bool, dataverse_seeded: bool = True
) -> list[PlannedChange]:
    """The changes a stream makes, in order: at most ``max_changes`` and ``rate * duration``."""
    count = min(config.max_changes, int(config.rate * config.duration))
    planner = _Planner(dataset, config, dataverse=dataverse, dataverse_seeded=dataverse_seeded)
    return [planner.next() for _ in range(count)]
