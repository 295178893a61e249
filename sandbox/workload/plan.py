"""Plan a live change stream: which record changes, on which side, how, and which changes must be refused.

The plan is a pure function of the dataset and the configuration (seeded ``random.Random``), so one seed
always yields the same changes. Organisation customers, person customers, vendors and vendors' contact
persons are created, updated (fields their map carries both ways, ``edits.py``) and deleted in F&O and in
Dataverse; a share of records is edited on both sides at once. Vendors are not deleted: their contact
persons would point at nothing. Values are in F&O's terms; the stream writes them as Dataverse columns for
a change made there.

One kind of change is valid where it is made, passes the table maps unchanged, and must be refused by the
other side (``REFUSALS``):

- ``email_too_long`` (made in F&O): an organisation customer whose ``PrimaryContactEmail`` has 101 to about
  180 characters. F&O takes it (its e-mail locator holds 255 characters; ``d365/fo`` publishes no limit), the
  customers map has no length limit for it, and Dataverse's ``emailaddress1`` holds at most 100
  (``d365/dataverse/accounts.json``), so the Web API refuses the account.

A refused record is not changed again where the refusal was made: each later change would carry the same
value and be refused too, and ``StreamSummary.rejects`` counts exactly the changes the other side refuses.

Refusals that are not real any more were dropped: an unknown currency made in F&O (F&O now refuses it
itself: ``SalesCurrencyCode`` relates to Currencies), a name too long for F&O (F&O publishes no lengths),
and a credit limit cleared in Dataverse (the maps now write F&O's 0 for it: F&O holds no null, see
docs/processing.md). No change made in Dataverse is planted as a refusal.
"""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass, field
from typing import Any, Literal

from dualbus.sandbox.workload.edits import EDITS, long_email
from dualbus.sandbox.workload.generate import Dataset
from dualbus.sandbox.workload.kinds import Kind, RecordRef, kind_of, record_ref
from dualbus.sandbox.workload.records import RecordFactory, Row
from dualbus.sandbox.workload.reference import Company

__all__ = ["REFUSALS", "PlannedChange", "StreamConfig", "plan_changes"]

Side = Literal["fo", "dataverse"]
Op = Literal["create", "update", "delete", "concurrent"]
REFUSALS = {"fo": "email_too_long"}


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
    vendor_share: float = 0.2
    person_share: float = 0.15
    contact_share: float = 0.1
    # Streams running side by side over one dataset each take a lane of it: the records at the positions
    # ``lane`` of every ``lanes`` and the numbers of new records likewise, so that no two change one record.
    lane: int = 0
    lanes: int = 1


@dataclass(frozen=True, slots=True)
class PlannedChange:
    """One planned change, values in F&O's terms; a concurrent change carries both sides' values."""

    op: Op
    side: Side
    record: RecordRef
    values: dict[str, Any] = field(default_factory=dict)
    other_values: dict[str, Any] = field(default_factory=dict)
    reject: str | None = None

    @property
    def kind(self) -> Kind:
        """The kind of record changed."""
        return self.record.kind


class _Planner:
    def __init__(
        self, dataset: Dataset, config: StreamConfig, *, dataverse: bool, dataverse_seeded: bool
    ) -> None:
        self.rng = random.Random(config.seed)  # noqa: S311 - seeded test data, not secrets
        self.config = config
        self.dataverse = dataverse
        self.factory = RecordFactory(self.rng, dataset.companies)
        self.factory.continue_after(dataset.rows, lane=config.lane, lanes=config.lanes)
        self.companies = sorted(dataset.companies, key=lambda c: c.id)
        self.known = _known(dataset, dataverse_seeded=dataverse_seeded, lane=config.lane, lanes=config.lanes)

    def next(self) -> PlannedChange:
        rng, config = self.rng, self.config
        kind = self._kind()
        if self.dataverse and rng.random() < config.concurrent_share and (both := self._on_both(kind)):
            record = rng.choice(both)
            return PlannedChange("concurrent", "fo", record, self._edit(record), self._edit(record))
        if rng.random() < config.reject_share:
            return self._refusal()
        side: Side = "dataverse" if self.dataverse and rng.random() < config.dataverse_share else "fo"
        roll, known = rng.random(), self.known[side, kind]
        if roll < config.create_share or not known:
            return self._create(side, kind)
        record = rng.choice(known)
        if roll < config.create_share + config.delete_share and kind != "vendor":
            # Gone from both sides: the pipeline deletes it on the other too, where a later change of it
            # would fail (404 from Dataverse, 400 from F&O) and count as the stream's failure, not the
            # pipeline's.
            for either in ("fo", "dataverse"):
                with contextlib.suppress(ValueError):
                    self.known[either, kind].remove(record)
            return PlannedChange("delete", side, record)
        return PlannedChange("update", side, record, self._edit(record))

    def _kind(self) -> Kind:
        config, roll = self.config, self.rng.random()
        shares: tuple[tuple[Kind, float], ...] = (
            ("vendor", config.vendor_share),
            ("person", config.person_share),
            ("contact", config.contact_share),
        )
        for kind, share in shares:
            if roll < share:
                return kind
            roll -= share
        return "customer"

    def _on_both(self, kind: Kind) -> list[RecordRef]:
        return sorted(set(self.known["fo", kind]) & set(self.known["dataverse", kind]))

    def _edit(self, record: RecordRef) -> Row:
        company = next(c for c in self.companies if c.id == record.company)
        return self.rng.choice(EDITS[record.kind])(self.factory, company)

    def _create(self, side: Side, kind: Kind) -> PlannedChange:
        company = self.rng.choice(self.companies)
        row = self._contact(side, company) if kind == "contact" else None
        if row is None:
            # A contact person belongs to a vendor of its company; without one, the vendor comes first.
            kind = "vendor" if kind == "contact" else kind
            factory = self.factory
            row = {"customer": factory.customer, "person": factory.person, "vendor": factory.vendor}[kind](
                company
            )
        record = record_ref(kind, row)
        self.known[side, kind].append(record)
        return PlannedChange("create", side, record, row)

    def _contact(self, side: Side, company: Company) -> Row | None:
        vendors = [v for v in self.known[side, "vendor"] if v.company == company.id]
        return self.factory.contact(company, self.rng.choice(vendors).number) if vendors else None

    def _refusal(self) -> PlannedChange:
        # Planted in F&O, the only side whose valid changes the other refuses (see the module's text).
        company = self.rng.choice(self.companies)
        row = self.factory.customer(company)
        row["PrimaryContactEmail"] = long_email(self.factory, str(row["OrganizationName"]))
        return PlannedChange("create", "fo", record_ref("customer", row), row, reject=REFUSALS["fo"])


def _known(
    dataset: Dataset, *, dataverse_seeded: bool, lane: int = 0, lanes: int = 1
) -> dict[tuple[Side, Kind], list[RecordRef]]:
    """The records of the stream's lane that each side holds before the stream: the dataset's, in Dataverse
    too when it was seeded."""
    kinds: tuple[Kind, ...] = ("customer", "person", "vendor", "contact")
    known: dict[tuple[Side, Kind], list[RecordRef]] = {(s, k): [] for s in ("fo", "dataverse") for k in kinds}
    sides: tuple[Side, ...] = ("fo", "dataverse") if dataverse_seeded else ("fo",)
    for entity in ("CustomersV3", "VendorsV2", "CDSContactPersonsV2"):
        for row in dataset.rows[entity][lane::lanes]:
            kind = kind_of(entity, row)
            if kind is not None:
                for side in sides:
                    known[side, kind].append(record_ref(kind, row))
    return known


def plan_changes(
    dataset: Dataset, config: StreamConfig, *, dataverse: bool, dataverse_seeded: bool = True
) -> list[PlannedChange]:
    """The changes a stream makes, in order: at most ``max_changes`` and ``rate * duration``."""
    count = min(config.max_changes, int(config.rate * config.duration))
    planner = _Planner(dataset, config, dataverse=dataverse, dataverse_seeded=dataverse_seeded)
    return [planner.next() for _ in range(count)]
