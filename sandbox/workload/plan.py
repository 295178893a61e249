"""Plan a live change stream: which record changes, on which side, how, and which changes must be refused.

The plan is a pure function of the dataset and the configuration (seeded ``random.Random``), so one seed
always yields the same sequence of changes. Customers and vendors change in F&O (``CustomersV3``,
``VendorsV2``) and in Dataverse (``accounts``, ``msdyn_vendors``). Two kinds of change are valid where they
are made but must be refused by the other side:

- ``unknown_currency`` (made in F&O): a currency code that exists nowhere, so Dataverse cannot resolve the
  ``transactioncurrencyid`` lookup;
- ``name_too_long`` (made in Dataverse): a name of 101-160 characters, which Dataverse's ``name`` and
  ``msdyn_vendorname`` (160) take but F&O's ``OrganizationName`` / ``VendorOrganizationName`` (100) do not.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Literal

from sandbox.workload.generate import Dataset, RecordFactory
from sandbox.workload.kinds import KINDS, Kind
from sandbox.workload.reference import Company

__all__ = ["PlannedChange", "RecordKey", "StreamConfig", "plan_changes"]

Side = Literal["fo", "dataverse"]
Op = Literal["create", "update", "delete", "concurrent"]
RecordKey = tuple[str, str]  # (company id upper case, customer or vendor account)
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
    vendor_share: float = 0.25


@dataclass(frozen=True, slots=True)
class PlannedChange:
    """One planned change; a concurrent change carries both sides' values (``fo`` and ``dataverse``)."""

    op: Op
    side: Side
    key: RecordKey
    values: dict[str, Any] = field(default_factory=dict)
    other_values: dict[str, Any] = field(default_factory=dict)
    reject: str | None = None
    kind: Kind = "customer"


class _Planner:
    def __init__(
        self, dataset: Dataset, config: StreamConfig, *, dataverse: bool, dataverse_seeded: bool
    ) -> None:
        self.rng = random.Random(config.seed)  # noqa: S311 - seeded test data, not secrets
        self.config = config
        self.dataverse = dataverse
        self.factory = RecordFactory(self.rng, dataset.companies)
        self.factory.continue_after(dataset)
        self.known: dict[tuple[Side, Kind], list[RecordKey]] = {}
        for kind, spec in KINDS.items():
            seeded = [
                (str(r["dataAreaId"]).upper(), str(r[spec.fo_key])) for r in dataset.rows[spec.fo_entity]
            ]
            self.known["fo", kind] = list(seeded)
            self.known["dataverse", kind] = list(seeded) if dataverse_seeded else []
        self.companies = sorted(dataset.companies, key=lambda c: c.id)

    def next(self) -> PlannedChange:
        rng, config = self.rng, self.config
        kind: Kind = "vendor" if rng.random() < config.vendor_share else "customer"
        if self.dataverse and rng.random() < config.concurrent_share:
            both = sorted(set(self.known["fo", kind]) & set(self.known["dataverse", kind]))
            if both:
                fo_values, dv_values = self._update("fo", kind), self._update("dataverse", kind)
                return PlannedChange("concurrent", "fo", rng.choice(both), fo_values, dv_values, kind=kind)
        side: Side = "dataverse" if self.dataverse and rng.random() < config.dataverse_share else "fo"
        reject, roll, known = rng.random() < config.reject_share, rng.random(), self.known[side, kind]
        if reject or roll < config.create_share or not known:
            return self._create(side, kind, reject=reject)
        key = rng.choice(known)
        if roll < config.create_share + config.delete_share:
            known.remove(key)
            return PlannedChange("delete", side, key, kind=kind)
        return PlannedChange("update", side, key, self._update(side, kind), kind=kind)

    def _create(self, side: Side, kind: Kind, *, reject: bool) -> PlannedChange:
        company, spec = self.rng.choice(self.companies), KINDS[kind]
        row = self.factory.vendor(company) if kind == "vendor" else self.factory.customer(company)
        key = (company.id, str(row[spec.fo_key]))
        if not reject:
            self.known[side, kind].append(key)
            return PlannedChange("create", side, key, row, kind=kind)
        if side == "fo":
            bad = {**row, spec.fo_currency: UNKNOWN_CURRENCY}
            return PlannedChange("create", side, key, bad, reject="unknown_currency", kind=kind)
        bad = {**row, spec.fo_name: self._long_name(company)}
        return PlannedChange("create", side, key, bad, reject="name_too_long", kind=kind)

    def _long_name(self, company: Company) -> str:
        base = f"{self.factory.organisation_name(company.country)} International Holding and Trading Group"
        length = self.rng.randint(101, 160)
        return (base + " Worldwide Operations Division" * 5)[:length]

    def _update(self, side: Side, kind: Kind) -> dict[str, Any]:
        rng = self.rng
        phone = f"+1 555-{rng.randint(100, 999)}-{rng.randint(1000, 9999)}"
        if side == "dataverse":
            if kind == "customer" and rng.random() < _HALF:
                return {"creditlimit": float(rng.choice((2_500, 12_500, 40_000, 90_000)))}
            return {KINDS[kind].dv_phone: phone}
        choice = rng.randrange(3)
        if choice == 0 and kind == "customer":
            return {"CreditLimit": float(rng.choice((1_000, 7_500, 20_000, 60_000, 150_000)))}
        if choice == 1:
            return {"PrimaryContactPhone" if kind == "customer" else "PrimaryPhoneNumber": phone}
        return {"OnHoldStatus": rng.choice(("No", "Invoice", "All"))}


def plan_changes(
    dataset: Dataset, config: StreamConfig, *, dataverse: bool, dataverse_seeded: bool = True
) -> list[PlannedChange]:
    """The changes a stream makes, in order: at most ``max_changes`` and ``rate * duration``."""
    count = min(config.max_changes, int(config.rate * config.duration))
    planner = _Planner(dataset, config, dataverse=dataverse, dataverse_seeded=dataverse_seeded)
    return [planner.next() for _ in range(count)]
