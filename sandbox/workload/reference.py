"""Fixed reference data the workload draws from: companies, currencies, terms, groups, units, organisation.

Company ids follow the Contoso demo data of finance and operations (USMF, DEMF, GBSI, ...); currencies are
ISO 4217 codes with their usual names, symbols and minor units; payment terms use the demo data's naming
(``Net30``: net 30 days). Every enum value here is a member name of the F&O enum it is written to (see
``d365/fo``: ``NetCurrent``, ``UnitOfMeasureClass``, ``OMOperatingUnitType``, ``HierarchyPurpose``), and one
the table maps can carry to Dataverse (their value maps lack some members, e.g. ``MultiCompanyProcessing``).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "COMPANIES",
    "CURRENCIES",
    "CUSTOMER_GROUPS",
    "DEFAULT_TERM",
    "DEPARTMENTS",
    "HIERARCHY_TYPES",
    "PAYMENT_TERMS",
    "ROOT_UNIT",
    "UNITS",
    "VALID_FROM",
    "VALID_TO",
    "VENDOR_GROUPS",
    "Company",
    "Currency",
    "Department",
    "Group",
    "HierarchyType",
    "PaymentTerm",
    "Unit",
]


@dataclass(frozen=True, slots=True)
class Company:
    """A legal entity: its F&O id, name, country (ISO 3166 alpha-3), accounting currency and party number."""

    id: str
    name: str
    country: str
    currency: str
    party_number: str


@dataclass(frozen=True, slots=True)
class Currency:
    """An ISO 4217 currency with its display name, symbol and number of decimals."""

    code: str
    name: str
    symbol: str
    precision: int


@dataclass(frozen=True, slots=True)
class PaymentTerm:
    """Terms of payment: name, description, days and the F&O ``NetCurrent`` method."""

    name: str
    description: str
    days: int
    method: str


@dataclass(frozen=True, slots=True)
class Group:
    """A customer or vendor group and the payment term its members get by default."""

    id: str
    description: str
    payment_term: str


@dataclass(frozen=True, slots=True)
class Unit:
    """A unit of measure: symbol, description, ``UnitOfMeasureClass`` member, system, decimals, size."""

    symbol: str
    description: str
    unit_class: str
    system: str
    decimals: int
    base: str
    factor: float  # how many ``base`` units one of this unit is


@dataclass(frozen=True, slots=True)
class Department:
    """An operating unit each legal entity has: its name and ``OMOperatingUnitType`` member."""

    name: str
    unit_type: str


@dataclass(frozen=True, slots=True)
class HierarchyType:
    """An organisation hierarchy type and the ``HierarchyPurpose`` member it serves."""

    name: str
    purpose: str
    departments: tuple[str, ...]  # which departments hang under their legal entity in it


# Party numbers are global in F&O (the address book's DirPartyTable); 9 digits as its number sequence pads.
COMPANIES: tuple[Company, ...] = (
    Company("USMF", "Contoso Entertainment System USA", "USA", "USD", "000000101"),
    Company("DEMF", "Contoso Entertainment System Germany", "DEU", "EUR", "000000102"),
    Company("GBSI", "Contoso Entertainment System UK", "GBR", "GBP", "000000103"),
    Company("FRRT", "Contoso Retail France", "FRA", "EUR", "000000104"),
    Company("JPMF", "Contoso Entertainment System Japan", "JPN", "JPY", "000000105"),
    Company("CAMF", "Contoso Entertainment System Canada", "CAN", "CAD", "000000106"),
)

CURRENCIES: tuple[Currency, ...] = (
    Currency("USD", "US Dollar", "$", 2),
    Currency("EUR", "Euro", "€", 2),
    Currency("GBP", "Pound Sterling", "£", 2),
    Currency("JPY", "Yen", "¥", 0),
    Currency("CAD", "Canadian Dollar", "$", 2),
    Currency("CHF", "Swiss Franc", "CHF", 2),
    Currency("SEK", "Swedish Krona", "kr", 2),
    Currency("DKK", "Danish Krone", "kr.", 2),
    Currency("NOK", "Norwegian Krone", "kr", 2),
    Currency("AUD", "Australian Dollar", "$", 2),
    Currency("MXN", "Mexican Peso", "$", 2),
    Currency("INR", "Indian Rupee", "₹", 2),
    Currency("CNY", "Yuan Renminbi", "¥", 2),
    Currency("BRL", "Brazilian Real", "R$", 2),
)

PAYMENT_TERMS: tuple[PaymentTerm, ...] = (
    PaymentTerm("Net10", "Net 10 days", 10, "Net"),
    PaymentTerm("Net30", "Net 30 days", 30, "Net"),
    PaymentTerm("Net45", "Net 45 days", 45, "Net"),
    PaymentTerm("Net60", "Net 60 days", 60, "Net"),
    PaymentTerm("M15", "Current month + 15 days", 15, "CurrentMth"),
    PaymentTerm("COD", "Cash on delivery", 0, "COD"),
)
DEFAULT_TERM = "Net30"

CUSTOMER_GROUPS: tuple[Group, ...] = (
    Group("10", "Wholesale customers", "Net30"),
    Group("20", "Major customers", "Net45"),
    Group("30", "Retail customers", "Net10"),
    Group("40", "Internet customers", "COD"),
    Group("80", "Other customers", "Net30"),
    Group("90", "Intercompany customers", "Net60"),
)

VENDOR_GROUPS: tuple[Group, ...] = (
    Group("10", "Parts vendors", "Net30"),
    Group("20", "Services vendors", "Net45"),
    Group("30", "Office supplies vendors", "Net30"),
    Group("40", "Freight carriers", "Net10"),
    Group("50", "Raw material vendors", "M15"),
)

# Units are global in F&O; the first of each class is its base unit (Dataverse's unit group base).
UNITS: tuple[Unit, ...] = (
    Unit("ea", "Each", "Quantity", "None", 0, "ea", 1.0),
    Unit("pcs", "Pieces", "Quantity", "None", 0, "ea", 1.0),
    Unit("box", "Box of 12", "Quantity", "None", 0, "ea", 12.0),
    Unit("kg", "Kilograms", "Mass", "Metric", 3, "kg", 1.0),
    Unit("g", "Grams", "Mass", "Metric", 0, "kg", 0.001),
    Unit("lb", "Pounds", "Mass", "US", 2, "kg", 0.45359),
    Unit("h", "Hours", "Time", "None", 2, "h", 1.0),
    Unit("min", "Minutes", "Time", "None", 0, "h", 0.01667),
    Unit("m", "Meters", "Length", "Metric", 2, "m", 1.0),
    Unit("cm", "Centimeters", "Length", "Metric", 0, "m", 0.01),
)

# The group's root: a business unit above every legal entity, as an organisation chart starts.
ROOT_UNIT = Department("Contoso Entertainment Group", "OMBusinessUnit")
DEPARTMENTS: tuple[Department, ...] = (
    Department("Sales", "OMDepartment"),
    Department("Purchasing", "OMDepartment"),
    Department("Finance", "OMCostCenter"),
)
HIERARCHY_TYPES: tuple[HierarchyType, ...] = (
    HierarchyType("Organization chart", "OrganizationChart", ("Sales", "Purchasing", "Finance")),
    HierarchyType("Procurement internal control", "PurchaseControl", ("Purchasing",)),
)
# Published hierarchies are valid from their publication to F&O's largest date (31 December 2154).
VALID_FROM = "2020-01-01T00:00:00Z"
VALID_TO = "2154-12-31T23:59:59Z"
