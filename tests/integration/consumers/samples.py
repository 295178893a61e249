"""Sample source rows for any table map, so every area and direction can be driven through the pipeline.

Values fit the published schemas (``d365``): dates where a side holds a date, enum members from the value
maps, strings within both sides' lengths. What lookups point at is fixed (``LOOKUP_VALUES``) and seeded on
the target first (``SEEDS``), so that the strict twins' checks hold: F&O refuses a customer whose group,
currency or payment terms it lacks, Dataverse a bind to a row it lacks.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dualbus.d365 import dataverse_tables, fo_entities
from dualbus.shared.envelope import Envelope, Operation, Origin
from dualbus.shared.maps import FieldMap, MapSet, Side, TableMap

COMPANY = "USMF"
CURRENCY = "USD"
GROUP = "10"
TERMS = "Net30"
UNIT = "ea"
HIERARCHY = "HT"
ORGANISATION = "P-ORG"
VENDOR = "V-SEED"
# The value of each F&O field that a lookup reads, by field name: what SEEDS creates.
LOOKUP_VALUES = {
    "dataAreaId": COMPANY,
    "SalesCurrencyCode": CURRENCY,
    "CurrencyCode": CURRENCY,
    "CustomerGroupId": GROUP,
    "VendorGroupId": GROUP,
    "PaymentTerms": TERMS,
    "PaymentTermId": TERMS,
    "DefaultPaymentTermName": TERMS,
    "DefaultPaymentTermsName": TERMS,
    "SalesUnitSymbol": UNIT,
    "InventoryUnitSymbol": UNIT,
    "PurchaseUnitSymbol": UNIT,
    "HierarchyType": HIERARCHY,
    "ChildOrganizationPartyNumber": ORGANISATION,
    "ParentOrganizationPartyNumber": ORGANISATION,
    "AssociatedContactNumber": VENDOR,
}
# F&O rows that lookups point at, in an order where each one's own references come first.
SEEDS: tuple[tuple[str, dict[str, object]], ...] = (
    ("company", {"LegalEntityId": COMPANY, "Name": "Contoso"}),
    ("currency", {"CurrencyCode": CURRENCY, "Name": "US dollar", "Symbol": "$"}),
    ("payment_terms", {"dataAreaId": COMPANY, "Name": TERMS, "Description": "Net 30", "NumberOfDays": 30}),
    ("customer_groups", {"dataAreaId": COMPANY, "CustomerGroupId": GROUP, "PaymentTermId": TERMS}),
    ("vendor_groups", {"dataAreaId": COMPANY, "VendorGroupId": GROUP, "DefaultPaymentTermName": TERMS}),
    ("units", {"UnitSymbol": UNIT, "UnitDescription": "Each", "DecimalPrecision": 0}),
    ("organisation_hierarchy_types", {"Name": HIERARCHY}),
    ("organisation_legal_entities", {"PartyNumber": ORGANISATION, "LegalEntityId": COMPANY}),
    (
        "vendors",
        {
            "dataAreaId": COMPANY,
            "VendorAccountNumber": VENDOR,
            "VendorOrganizationName": "Fabrikam",
            "VendorPartyType": "Organization",
            "VendorGroupId": GROUP,
            "CurrencyCode": CURRENCY,
            "DefaultPaymentTermsName": TERMS,
        },
    ),
)
_DAY_ONE = datetime(2026, 1, 1, tzinfo=UTC)
_DATE_TYPES = frozenset({"Edm.DateTimeOffset", "Edm.Date", "DateTime"})


def source_side(direction_target: Side) -> Side:
    """The side changes come from when they go to ``direction_target``."""
    return "fo" if direction_target == "dataverse" else "dataverse"


def row(table_map: TableMap, source: Side, n: int, label: str = "") -> tuple[dict, dict]:
    """A (key, data) pair of a source row of ``table_map``: key parts numbered ``n``, lookups seeded."""
    target: Side = "dataverse" if source == "fo" else "fo"
    data: dict[str, object] = {}
    for field in table_map.fields_towards(target):
        name = field.name_on(source)
        if name and field.constant is None:
            data[name] = _value(table_map, field, source, n, label)
    for lookup in table_map.lookups_towards(target):
        if source == "fo":
            data.update({fo: LOOKUP_VALUES[fo] for fo in lookup.key.values()})
        else:
            data[lookup.dataverse] = {column: LOOKUP_VALUES[fo] for column, fo in lookup.key.items()}
    for condition in table_map.source_filter.fo if source == "fo" else table_map.source_filter.dataverse:
        if condition.op in {"eq", "in"}:
            data[condition.field] = condition.value[0] if condition.op == "in" else condition.value
    key = {part: _key_value(table_map, source, part, n) for part in table_map.key_on(source)}
    for part, value in key.items():
        if not isinstance(data.get(part), dict):
            data[part] = value
    return key, data


def _key_value(table_map: TableMap, source: Side, part: str, n: int) -> object:
    conditions = table_map.source_filter.fo if source == "fo" else table_map.source_filter.dataverse
    fixed = [c.value for c in conditions if c.field == part and c.op == "eq"]
    if fixed:
        return fixed[0]
    if source == "fo" and part in LOOKUP_VALUES and _feeds_lookup(table_map, part):
        return LOOKUP_VALUES[part]
    lookup = table_map.lookup(part) if source == "dataverse" else None
    if lookup is not None:
        return LOOKUP_VALUES[next(iter(lookup.key.values()))]
    field = table_map.field_named(source, part)
    if field is not None and (field.value_map or _is_date(table_map, field)):
        return _value(table_map, field, source, n, "")
    digits = _base36(n)
    return f"K{digits}" if len(digits) < _limit(table_map, field) else digits


def _feeds_lookup(table_map: TableMap, part: str) -> bool:
    return any(part in lookup.key.values() for lookup in table_map.lookups)


def _value(table_map: TableMap, field: FieldMap, source: Side, n: int, label: str) -> object:
    if field.value_map:
        pair = field.value_map[n % len(field.value_map)]
        return pair.fo if source == "fo" else pair.dataverse
    if _is_date(table_map, field):
        return (_DAY_ONE + timedelta(days=n)).strftime("%Y-%m-%dT%H:%M:%SZ")
    kind = str(field.type)
    if kind.endswith("integer"):
        return n % 3
    if kind.endswith("decimal"):
        return n + 0.5
    if kind.endswith("boolean"):
        return True
    return f"{label}{n}"[: _limit(table_map, field)] or "x"


def _is_date(table_map: TableMap, field: FieldMap) -> bool:
    fo = fo_entities()[table_map.fo_entity].fields.get(field.fo or "")
    dv = dataverse_tables()[table_map.dataverse_table].columns.get(field.dataverse or "")
    return (fo is not None and fo.type in _DATE_TYPES) or (dv is not None and dv.type in _DATE_TYPES)


def _limit(table_map: TableMap, field: FieldMap | None) -> int:
    if field is None:
        return 20
    fo = fo_entities()[table_map.fo_entity].fields.get(field.fo or "")
    limits = [field.max_length_on("dataverse"), fo.max_length if fo is not None else None, 20]
    return min(limit for limit in limits if limit)


def _base36(n: int) -> str:
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    text = ""
    while True:
        n, rest = divmod(n, 36)
        text = alphabet[rest] + text
        if n == 0:
            return text


def event(
    table_map: TableMap,
    source: Side,
    n: int,
    *,
    version: int = 1,
    label: str = "",
    operation: Operation = Operation.UPDATE,
    base: int | None = None,
) -> Envelope:
    """The envelope of a change to sample row ``n`` of ``table_map`` at ``version``, based on ``base``."""
    key, data = row(table_map, source, n, label)
    return Envelope.for_change(
        origin=Origin.FO if source == "fo" else Origin.DATAVERSE,
        area=table_map.area,
        entity=table_map.table_on(source),
        key=key,
        operation=operation,
        source_version=version,
        time=datetime.now(UTC),
        data={} if operation is Operation.DELETE else data,
        base_version=base,
    )


def seed_events(maps: MapSet) -> list[Envelope]:
    """The F&O changes that create, in Dataverse, every row the samples' lookups point at."""
    return [
        Envelope.for_change(
            origin=Origin.FO,
            area=maps[name].area,
            entity=maps[name].fo_entity,
            key={part: record[part] for part in maps[name].fo_key},
            operation=Operation.UPDATE,
            source_version=1,
            time=datetime.now(UTC),
            data=record,
        )
        for name, record in SEEDS
    ]


def fo_seed_rows(maps: MapSet) -> list[tuple[str, dict[str, object]]]:
    """The same rows as F&O entity rows (entity set, fields), for the maps that also write F&O."""
    return [(maps[name].fo_entity, record) for name, record in SEEDS if maps[name].carries("fo")]
