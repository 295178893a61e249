"""Which F&O field becomes which Dataverse column, as the table maps (shared/maps/data) write it.

One ``Shape`` per map: its F&O entity set (and source filter), its Dataverse table, the columns with their
value maps, its constants and its lookups (bound by the target's alternate key, ``Bind.key``: target key
column → F&O field). The workload keeps its own copy rather than import the pipeline's maps (it must stay
separable from the pipeline); a test checks that the two agree. The shapes themselves are in
``reference_shapes`` and ``master_shapes``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = [
    "HIERARCHY_PURPOSE",
    "NO_YES",
    "ON_HOLD",
    "PAYMENT_METHOD",
    "SYSTEM_OF_UNITS",
    "UNIT_TYPE",
    "Bind",
    "Column",
    "Shape",
    "columns",
    "company_bind",
    "striped",
]


@dataclass(frozen=True, slots=True)
class Column:
    """An F&O field and the Dataverse column it becomes, through ``values`` when it is an enum."""

    fo: str
    dv: str
    values: Mapping[Any, Any] | None = None


@dataclass(frozen=True, slots=True)
class Bind:
    """A lookup bound by the target's alternate key: ``key`` pairs target key columns with F&O fields."""

    navigation: str
    target: str
    key: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Shape:
    """How the rows of one F&O entity (those with ``only``'s value) look as rows of one Dataverse table."""

    name: str
    fo_entity: str
    table: str
    columns: tuple[Column, ...]
    binds: tuple[Bind, ...] = ()
    constants: Mapping[str, Any] = field(default_factory=dict)
    only: tuple[str, str] | None = None

    def takes(self, row: Mapping[str, Any]) -> bool:
        """Whether an F&O row of ``fo_entity`` passes this shape's source filter."""
        return self.only is None or row.get(self.only[0]) == self.only[1]


def _options(first: int, members: str) -> Mapping[str, int]:
    # Dual-write numbers these option sets in member order from a base value.
    return MappingProxyType({m: first + i for i, m in enumerate(members.split())})


NO_YES: Mapping[str, bool] = MappingProxyType({"No": False, "Yes": True})
ON_HOLD = _options(806_380_000, "No Invoice All Payment Requisition Never")
PAYMENT_METHOD = _options(806_380_991, "Net CurrentMth CurrentQuart CurrentYear CurrentWeek COD CutOffDate")
SYSTEM_OF_UNITS = _options(192_350_000, "None Metric US")
HIERARCHY_PURPOSE = _options(
    806_380_000,
    "NotSet PurchaseControl ExpenseControl OrganizationChart SigningLimitControl InvoiceControl "
    "AuditInternalControl CentralizedPayments Security RetailAssortment RetailReplenishment RetailReporting "
    "BenefitEligibilityControl BudgetPlanning RetailPOSPosting Project PremiumEarningGeneration "
    "DistributedOrderManagement",
)
UNIT_TYPE: Mapping[str, int] = MappingProxyType(
    {
        **_options(806_380_001, "OMDepartment None OMCostCenter OMValueStream OMBusinessUnit OMAnyOU"),
        "RetailChannel": 192_350_000,
    }
)
COMPANY = ("msdyn_company", "dataAreaId")


def columns(*pairs: str) -> tuple[Column, ...]:
    """Plain columns from ``"FoField dv_column"`` pairs."""
    return tuple(Column(fo, dv) for fo, dv in (pair.split() for pair in pairs))


def company_bind(navigation: str = "msdyn_company") -> Bind:
    """The lookup of a row's company (cdm_companies, keyed by company code)."""
    return Bind(navigation, "cdm_companies", (("cdm_companycode", "dataAreaId"),))


def striped(navigation: str, target: str, column: str, fo: str) -> Bind:
    """A lookup to a company-striped table, keyed by company and one natural column."""
    return Bind(navigation, target, (COMPANY, (column, fo)))
