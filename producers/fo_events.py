"""F&O data events as they arrive with the Power Platform integration: a Dataverse RemoteExecutionContext.

Data events exist only where the Power Platform integration is on, and their Service Bus and HTTPS
endpoints are then "proxied through Dataverse"; the record is in the ``Target`` and ``PreImage``
InputParameters, and null datetimes are left out:
https://github.com/MicrosoftDocs/dynamics-365-unified-operations-public/blob/301380e278316e838bd17501ff7335509d46632c/articles/fin-ops-core/dev-itpro/business-events/data-events.md
https://github.com/MicrosoftDocs/dynamics-365-unified-operations-public/blob/e315b9a767be2310f4dbd29db22785d1bbe62881/articles/fin-ops-core/dev-itpro/business-events/managing-business-event-endpoints.md
The context's shape (``MessageName``, ``PrimaryEntityName``, ``PrimaryEntityId``, ``InputParameters`` as
``{"key", "value"}`` pairs, an Entity's ``Attributes`` / ``FormattedValues`` / ``Id`` / ``LogicalName``,
``OperationCreatedOn``) follows the documented example:
https://github.com/MicrosoftDocs/powerapps-docs/blob/0180169dbe9064b4367f6a002128454acccedc4d/powerapps-docs/developer/data-platform/use-webhooks.md
Virtual tables raise ``OnExternalCreated`` / ``OnExternalUpdated`` / ``OnExternalDeleted``, and a delete's
Target needs only the row's id:
https://github.com/MicrosoftDocs/powerapps-docs/blob/b7cd6633857378e4ac89aa6060939b38f85dfd1d/powerapps-docs/developer/data-platform/virtual-entities/enable-virtual-table-event-support.md
The table is ``mserp_`` + the entity's lower-case AOT name (``d365.FoEntity.event_entity_name``), its columns
``mserp_`` + the lower-case field name:
https://github.com/MicrosoftDocs/dynamics-365-unified-operations-public/blob/a54c1253b5bbacea156e32bd50798b56c344c72c/articles/fin-ops-core/dev-itpro/power-platform/entity-modeling.md
https://github.com/MicrosoftDocs/dynamics-365-unified-operations-public/blob/d89fee5cf2ef4951dff6e1a89e48ab86c420a26e/articles/human-resources/payroll-integration-payroll-employee.md
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from dualbus.d365 import FoEntity, FoField, fo_deployed_fields, fo_entities
from dualbus.producers.errors import InvalidDataEventError
from dualbus.producers.fo_values import UNKNOWN, decode_value, parse_wcf_date
from dualbus.shared.envelope import Operation

__all__ = ["FoDataEvent", "parse_data_event"]

_MESSAGES = {
    "onexternalcreated": Operation.CREATE,
    "onexternalupdated": Operation.UPDATE,
    "onexternaldeleted": Operation.DELETE,
    "create": Operation.CREATE,
    "update": Operation.UPDATE,
    "delete": Operation.DELETE,
}
_PREFIX = "mserp_"


@dataclass(frozen=True, slots=True)
class FoDataEvent:
    """One data event: which entity and row, what happened, and the field values it carried."""

    # The OData entity set, or None when no F&O entity dualbus knows has this event name.
    entity: str | None
    event_entity_name: str
    operation: Operation
    # The row's virtual-entity GUID, lower case.
    row_id: str
    # Field values by F&O field name (after the change; a delete's Target may carry none).
    target: dict[str, Any]
    # The row before an update or delete, when the event carries it.
    pre_image: dict[str, Any] | None
    time: datetime | None
    operation_id: str


@dataclass(frozen=True, slots=True)
class _RawEntity:
    attributes: list[tuple[str, object]]
    formatted: dict[str, str]
    row_id: str | None


def parse_data_event(payload: object) -> FoDataEvent:
    """Read one RemoteExecutionContext; InvalidDataEventError names what is missing or malformed."""
    context = _mapping(payload, "a data event")
    operation = _operation(context.get("MessageName"))
    name = context.get("PrimaryEntityName")
    if not isinstance(name, str) or not name:
        raise InvalidDataEventError("the data event has no PrimaryEntityName")
    parameters = _parameters(context.get("InputParameters"))
    target = _entity(parameters.get("Target"), "Target", name)
    before = _entity(parameters.get("PreImage"), "PreImage", name)
    entity = _by_event_name().get(name.casefold())
    return FoDataEvent(
        entity=entity.entity_set if entity is not None else None,
        event_entity_name=name,
        operation=operation,
        row_id=_row_id(context.get("PrimaryEntityId"), target, before),
        target=_values(entity, target, "Target"),
        pre_image=_values(entity, before, "PreImage") if before is not None else None,
        time=_time(context.get("OperationCreatedOn")),
        operation_id=str(context.get("OperationId") or ""),
    )


@cache
def _by_event_name() -> dict[str, FoEntity]:
    return {entity.event_entity_name.casefold(): entity for entity in fo_entities().values()}


@cache
def _fields_by_column(entity_set: str) -> dict[str, tuple[str, FoField]]:
    fields = fo_deployed_fields(fo_entities()[entity_set])
    return {name.casefold(): (name, field) for name, field in fields.items()}


def _mapping(value: object, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidDataEventError(f"{what} is a JSON object, not {type(value).__name__}")
    return value


def _operation(message: object) -> Operation:
    operation = _MESSAGES.get(message.casefold()) if isinstance(message, str) else None
    if operation is None:
        raise InvalidDataEventError(
            f"MessageName {message!r} is not OnExternalCreated, OnExternalUpdated or OnExternalDeleted"
        )
    return operation


def _parameters(value: object) -> dict[str, object]:
    # Dataverse leaves InputParameters out of a webhook body larger than 256 KB: then only the ids remain.
    if value is None:
        return {}
    pairs = _pairs(value, "InputParameters")
    return dict(reversed(pairs))


def _pairs(value: object, what: str) -> list[tuple[str, object]]:
    if not isinstance(value, list):
        raise InvalidDataEventError(f"{what} is not a list of key/value pairs")
    pairs = []
    for index, item in enumerate(value):
        if not isinstance(item, Mapping) or not isinstance(item.get("key"), str) or "value" not in item:
            raise InvalidDataEventError(f"{what}[{index}] is not a {{'key', 'value'}} pair")
        pairs.append((str(item["key"]), item["value"]))
    return pairs


def _entity(value: object, what: str, name: str) -> _RawEntity | None:
    if value is None:
        return None
    entity = _mapping(value, what)
    logical = entity.get("LogicalName")
    if logical is not None and (not isinstance(logical, str) or logical.casefold() != name.casefold()):
        raise InvalidDataEventError(f"{what}.LogicalName {logical!r} is not PrimaryEntityName {name!r}")
    formatted = _pairs(entity.get("FormattedValues") or [], f"{what}.FormattedValues")
    if not all(isinstance(text, str) for _, text in formatted):
        raise InvalidDataEventError(f"{what}.FormattedValues holds a value that is not text")
    return _RawEntity(
        attributes=_pairs(entity.get("Attributes"), f"{what}.Attributes"),
        formatted={key.casefold(): str(text) for key, text in formatted},
        row_id=_guid(entity.get("Id"), f"{what}.Id"),
    )


def _guid(value: object, what: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return str(uuid.UUID(value))
        except ValueError:
            pass
    raise InvalidDataEventError(f"{what} is not a GUID: {value!r}")


def _row_id(primary: object, target: _RawEntity | None, before: _RawEntity | None) -> str:
    found = {
        what: row_id
        for what, row_id in (
            ("PrimaryEntityId", _guid(primary, "PrimaryEntityId")),
            ("Target.Id", target.row_id if target else None),
            ("PreImage.Id", before.row_id if before else None),
        )
        if row_id is not None
    }
    if not found:
        raise InvalidDataEventError(
            "the data event names no row: no PrimaryEntityId, Target.Id or PreImage.Id"
        )
    if len(set(found.values())) > 1:
        raise InvalidDataEventError(f"the data event names different rows: {found}")
    return next(iter(found.values()))


def _values(entity: FoEntity | None, raw: _RawEntity | None, what: str) -> dict[str, Any]:
    if entity is None or raw is None:
        return {}
    columns = _fields_by_column(entity.entity_set)
    values: dict[str, Any] = {}
    for key, value in raw.attributes:
        column = key.casefold()
        found = columns.get(column.removeprefix(_PREFIX))
        if found is None:
            # mserp_primaryfield, the row id column, lookups (mserp_fk_...): no F&O field of the entity.
            continue
        name, field = found
        decoded = decode_value(entity, field, value, raw.formatted.get(column), f"{what}.{key}")
        if decoded is not UNKNOWN:
            values[name] = decoded
    return values


def _time(value: object) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidDataEventError(f"OperationCreatedOn is not a date-time: {value!r}")
    return parse_wcf_date(value, "OperationCreatedOn")
