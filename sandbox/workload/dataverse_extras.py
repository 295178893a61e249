"""Columns a Dataverse row needs that no table map carries, and the unit groups units belong to.

- cdm_companies: a fixed ``cdm_companyid``, so that company-striped keys can name it before any lookup
  (Dataverse takes a client-chosen primary id on create).
- transactioncurrencies: ``currencyprecision`` (required), the decimals of F&O's rounding rule.
- uoms: ``quantity`` and ``uomscheduleid`` (required), and ``baseuom`` for all but a group's base unit.
  One unit group (uomschedules) per F&O unit class, as units of one class convert into each other.
- products: ``productnumber``, the table's key, composed of company and product number as the products map
  composes it, ``productstructure`` 1 (a product) and ``defaultuomscheduleid`` (both required).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from dualbus.sandbox.workload.reference import UNITS, Unit

__all__ = ["EXTRAS", "fixed_id", "uom_schedules"]

Row = dict[str, Any]
Extra = Callable[[Mapping[str, Any], Mapping[str, str]], Row]
# Fixed ids are derived from names in this namespace, so one dataset always gets the same ids.
_IDS = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/dualbus/dualbus/sandbox/workload")
_UNITS = {u.symbol: u for u in UNITS}
_PRODUCT = 1  # productstructure: a product, not a family or bundle


def fixed_id(table: str, name: str) -> str:
    """The id the workload gives the row ``name`` of ``table``, the same in every run."""
    return str(uuid.uuid5(_IDS, f"{table}/{name}"))


def _schedule_path(unit: Unit) -> str:
    return f"/uomschedules({fixed_id('uomschedules', unit.unit_class)})"


def uom_schedules() -> list[Row]:
    """One unit group per unit class, named after it, with its base unit's name."""
    bases = [u for u in UNITS if u.base == u.symbol]
    return [
        {
            "uomscheduleid": fixed_id("uomschedules", u.unit_class),
            "name": u.unit_class,
            "baseuomname": u.symbol,
            "description": f"Units of the F&O unit class {u.unit_class}",
        }
        for u in bases
    ]


def _company(row: Mapping[str, Any], companies: Mapping[str, str]) -> Row:
    return {"cdm_companyid": companies[str(row["LegalEntityId"]).upper()]}


def _currency(row: Mapping[str, Any], _companies: Mapping[str, str]) -> Row:
    decimals, unit = 0, float(row["GeneralRoundingRule"])
    while round(unit * 10**decimals, 9) < 1:
        decimals += 1
    return {"currencyprecision": decimals}


def _unit(row: Mapping[str, Any], _companies: Mapping[str, str]) -> Row:
    unit = _UNITS[row["UnitSymbol"]]
    extra: Row = {"quantity": unit.factor, "uomscheduleid@odata.bind": _schedule_path(unit)}
    if unit.base != unit.symbol:
        extra["baseuom@odata.bind"] = f"/uoms(msdyn_symbol='{unit.base}')"
    return extra


def _product(row: Mapping[str, Any], _companies: Mapping[str, str]) -> Row:
    return {
        "productnumber": f"{row['dataAreaId']}{row['ProductNumber']}",
        "productstructure": _PRODUCT,
        "defaultuomscheduleid@odata.bind": _schedule_path(_UNITS[row["SalesUnitSymbol"]]),
    }


EXTRAS: Mapping[str, Extra] = MappingProxyType(
    {"cdm_companies": _company, "transactioncurrencies": _currency, "uoms": _unit, "products": _product}
)
