"""Sample source rows for any table map, so every area and direction can be driven through the pipeline."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.envelope import Envelope, Operation, Origin
from shared.maps import FieldMap, MapSet, Side, TableMap

COMPANY = "USMF"
CURRENCY = "USD"
GROUP = "10"
# What the lookups of every map point at; seeded on the target before company-striped rows arrive.
_LOOKUP_VALUES = {
    "dataAreaId": COMPANY,
    "cdm_companycode": COMPANY,
    "SalesCurrencyCode": CURRENCY,
    "CurrencyCode": CURRENCY,
    "isocurrencycode": CURRENCY,
    "CustomerGroupId": GROUP,
    "VendorGroupId": GROUP,
    "msdyn_groupid": GROUP,
    "msdyn_vendorgroup": GROUP,
}


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
            data[name] = _value(field, source, n, label)
    for lookup in table_map.lookups_towards(target):
        if source == "fo":
            data.update(
                {column_source: _LOOKUP_VALUES[column_source] for column_source in lookup.key.values()}
            )
        else:
            data[lookup.dataverse] = {column: _LOOKUP_VALUES.get(column, COMPANY) for column in lookup.key}
    for condition in table_map.source_filter.fo if source == "fo" else table_map.source_filter.dataverse:
        data[condition.field] = condition.value
    key: dict[str, object] = {}
    for part in table_map.key_on(source):
        key[part] = (
            COMPANY if _is_lookup_part(table_map, source, part) else _key_value(table_map, source, part, n)
        )
        if not isinstance(data.get(part), dict):
            data[part] = key[part]
    return key, data


def _is_lookup_part(table_map: TableMap, source: Side, part: str) -> bool:
    if source == "dataverse":
        return table_map.lookup(part) is not None
    return any(part in lookup.key.values() for lookup in table_map.lookups)


def _key_value(table_map: TableMap, source: Side, part: str, n: int) -> str:
    field = table_map.field_named(source, part)
    limit = min(
        (field.max_length_on("fo") or 20) if field else 20,
        (field.max_length_on("dataverse") or 20) if field else 20,
    )
    digits = _base36(n)
    return f"K{digits}" if len(digits) < limit else digits


def _base36(n: int) -> str:
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    text = ""
    while True:
        n, rest = divmod(n, 36)
        text = alphabet[rest] + text
        if n == 0:
            return text


def _value(field: FieldMap, source: Side, n: int, label: str) -> object:
    if field.value_map:
        pair = field.value_map[0]
        return pair.fo if source == "fo" else pair.dataverse
    kind = str(field.type)
    if kind.endswith("integer"):
        return n
    if kind.endswith("decimal"):
        return n + 0.5
    if kind.endswith("boolean"):
        return True
    limit = min(field.max_length_on("fo") or 20, field.max_length_on("dataverse") or 20)
    return f"{label}{n}"[:limit] or "x"


def event(
    table_map: TableMap,
    source: Side,
    n: int,
    *,
    version: int = 1,
    label: str = "",
    operation: Operation = Operation.UPDATE,
    time: datetime | None = None,
) -> Envelope:
    """The envelope of a change to sample row ``n`` of ``table_map`` at ``version``."""
    key, data = row(table_map, source, n, label)
    return Envelope.for_change(
        origin=Origin.FO if source == "fo" else Origin.DATAVERSE,
        area=table_map.area,
        entity=table_map.table_on(source),
        key=key,
        operation=operation,
        source_version=version,
        time=time or datetime.now(UTC),
        data={} if operation is Operation.DELETE else data,
    )


def seed_events(maps: MapSet, source: Side) -> dict[str, list[Envelope]]:
    """Per area, the changes that create what lookups point at: the company, the currency, the groups."""
    company, currency = maps["company"], maps["currency"]
    seeds = {
        "company": [
            _fixed(
                company, source, {"fo": {"LegalEntityId": COMPANY}, "dataverse": {"cdm_companycode": COMPANY}}
            )
        ],
        "currency": [
            _fixed(
                currency,
                source,
                {"fo": {"CurrencyCode": CURRENCY}, "dataverse": {"isocurrencycode": CURRENCY}},
            )
        ],
    }
    for name, area in (("customer_groups", "customer"), ("vendor_groups", "vendor")):
        table_map = maps[name]
        key, data = row(table_map, source, 0)
        group_part = table_map.key_on(source)[1]
        key[group_part] = GROUP
        data[group_part] = GROUP
        seeds[area] = [_envelope(table_map, source, key, data)]
    return seeds


def _fixed(table_map: TableMap, source: Side, keys: dict[str, dict]) -> Envelope:
    key, data = row(table_map, source, 0, "seed")
    key = keys[source]
    return _envelope(table_map, source, key, {**data, **key})


def _envelope(table_map: TableMap, source: Side, key: dict, data: dict) -> Envelope:
    return Envelope.for_change(
        origin=Origin.FO if source == "fo" else Origin.DATAVERSE,
        area=table_map.area,
        entity=table_map.table_on(source),
        key=key,
        operation=Operation.UPDATE,
        source_version=1,
        time=datetime.now(UTC),
        data=data,
    )
