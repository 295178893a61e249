"""A data event as F&O sends it with the Power Platform integration: a Dataverse RemoteExecutionContext.

Data events exist only where the Power Platform integration is on, and their endpoints are then "proxied
through Dataverse" (HTTPS endpoints become Dataverse webhooks); the record goes in the context's ``Target``
and ``PreImage`` InputParameters, and null datetimes (F&O's null date is 1900-01-01) are left out:
https://github.com/MicrosoftDocs/dynamics-365-unified-operations-public/blob/301380e278316e838bd17501ff7335509d46632c/articles/fin-ops-core/dev-itpro/business-events/data-events.md
https://github.com/MicrosoftDocs/dynamics-365-unified-operations-public/blob/e315b9a767be2310f4dbd29db22785d1bbe62881/articles/fin-ops-core/dev-itpro/business-events/managing-business-event-endpoints.md
The context's fields and the Entity shape follow the documented example (tests/twins/fo/fixtures):
https://github.com/MicrosoftDocs/powerapps-docs/blob/0180169dbe9064b4367f6a002128454acccedc4d/powerapps-docs/developer/data-platform/use-webhooks.md
Virtual-table events are the OnExternalCreated/Updated/Deleted messages:
https://github.com/MicrosoftDocs/powerapps-docs/blob/b7cd6633857378e4ac89aa6060939b38f85dfd1d/powerapps-docs/developer/data-platform/virtual-entities/enable-virtual-table-event-support.md
The table is ``mserp_`` + the lower-case AOT name, columns ``mserp_`` + the lower-case field name, and the
row id a GUID of the data entity id (first 4 bytes) and the root record's RecId (last 8 bytes):
https://github.com/MicrosoftDocs/dynamics-365-unified-operations-public/blob/a54c1253b5bbacea156e32bd50798b56c344c72c/articles/fin-ops-core/dev-itpro/power-platform/entity-modeling.md

Unconfirmed (no public F&O-originated example): that Target holds every field for a create, the changed
fields for an update and none for a delete; enum values as OptionSetValue 200000000 + the member's index
(the 200000000 range is what F&O virtual tables show, the per-member mapping is not); which user ids appear.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from dualbus.d365 import FoEntity, FoField
from dualbus.sandbox.fo.entities import ENTITIES, ENTITY_IDS
from dualbus.sandbox.fo.store import Change
from dualbus.sandbox.identity import user_id_for

__all__ = [
    "DEFAULT_ORGANIZATION",
    "ENTITY_TYPE",
    "MESSAGE_NAMES",
    "OPTION_SET_TYPE",
    "Organization",
    "data_event_payload",
    "virtual_entity_id",
]

ENTITY_TYPE = "Entity:http://schemas.microsoft.com/xrm/2011/Contracts"
OPTION_SET_TYPE = "OptionSetValue:http://schemas.microsoft.com/xrm/2011/Contracts"
MESSAGE_NAMES = {"Create": "OnExternalCreated", "Update": "OnExternalUpdated", "Delete": "OnExternalDeleted"}
_OPTION_BASE = 200_000_000
_DATES = frozenset({"Edm.DateTimeOffset", "Edm.Date"})
_NAMESPACE = uuid.UUID("3c8e2f5a-9b1d-4e7c-8a6f-2d4b9e1c7a53")


@dataclass(frozen=True, slots=True)
class Organization:
    """The Dataverse environment events are proxied through (the Dataverse twin's id by default)."""

    id: str = "7d5c3b1a-0e2f-4a6b-9c8d-1e2f3a4b5c6d"
    name: str = "sandbox"
    domain: str = "sandbox.crm.dualbus.local"
    business_unit_id: str = "2b7e4c1d-5a3f-4e8b-9d6c-0f1a2b3c4d5e"


DEFAULT_ORGANIZATION = Organization()


def virtual_entity_id(entity_set: str, rec_id: int) -> str:
    """A row's virtual-entity GUID: the entity id in the first 4 bytes, the RecId in the last 8."""
    raw = ENTITY_IDS[entity_set].to_bytes(4, "big") + bytes(4) + rec_id.to_bytes(8, "little")
    return str(uuid.UUID(bytes=raw))


def data_event_payload(
    change: Change,
    organization: Organization = DEFAULT_ORGANIZATION,
    *,
    entities: Mapping[str, FoEntity] = ENTITIES,
) -> dict[str, Any]:
    """The RemoteExecutionContext sent for one committed change of one of ``entities`` (an unprepared
    tenant's lack dualbus's extension fields, and its events name none: ``UNPREPARED_ENTITIES``)."""
    entity = entities[change.entity]
    row_id = virtual_entity_id(change.entity, change.rec_id)
    user = user_id_for(change.modified_by)
    seed = f"{organization.id}:{change.sequence}:{change.entity}:{change.rec_id}:{change.time.isoformat()}"
    message = MESSAGE_NAMES[change.change_type]
    return {
        "BusinessUnitId": organization.business_unit_id,
        "CorrelationId": str(uuid.uuid5(_NAMESPACE, f"correlation:{seed}")),
        "Depth": 1,
        "InitiatingUserId": user,
        "InputParameters": _input_parameters(entity, row_id, change),
        "IsExecutingOffline": False,
        "IsInTransaction": False,
        "IsOfflinePlayback": False,
        "IsolationMode": 1,
        "MessageName": message,
        "Mode": 1,
        "OperationCreatedOn": _dotnet_date(change.time),
        "OperationId": str(uuid.uuid5(_NAMESPACE, f"operation:{seed}")),
        "OrganizationId": organization.id,
        "OrganizationName": organization.name,
        "OutputParameters": [],
        "OwningExtension": _step(entity, message),
        "ParentContext": None,
        "PostEntityImages": [],
        "PreEntityImages": [],
        "PrimaryEntityId": row_id,
        "PrimaryEntityName": entity.event_entity_name,
        "RequestId": None,
        "SecondaryEntityName": "none",
        "SharedVariables": [],
        "Stage": 40,
        "UserId": user,
    }


def _input_parameters(entity: FoEntity, row_id: str, change: Change) -> list[dict[str, Any]]:
    targets = {"Create": tuple(change.row), "Update": change.changed_fields, "Delete": ()}
    target = _entity(entity, row_id, change.row, targets[change.change_type])
    parameters = [{"key": "Target", "value": target}]
    if change.before is not None:
        parameters.append({"key": "PreImage", "value": _entity(entity, row_id, change.before, change.before)})
    return parameters


def _entity(entity: FoEntity, row_id: str, row: Mapping[str, Any], names: Iterable[str]) -> dict[str, Any]:
    wanted = set(names)
    attributes: list[dict[str, Any]] = []
    formatted: list[dict[str, Any]] = []
    for name, field in entity.fields.items():
        value = row.get(name)
        if name not in wanted or (field.type in _DATES and _null_date(value)):
            continue
        key = f"mserp_{name.lower()}"
        attributes.append({"key": key, "value": _value(entity, field, value)})
        if field.enum is not None and value is not None:
            formatted.append({"key": key, "value": value})
    return {
        "__type": ENTITY_TYPE,
        "Attributes": attributes,
        "EntityState": None,
        "FormattedValues": formatted,
        "Id": row_id,
        "KeyAttributes": [],
        "LogicalName": entity.event_entity_name,
        "RelatedEntities": [],
        "RowVersion": None,
    }


def _null_date(value: object) -> bool:
    # "Any datetime properties ... that have a NULL value will be removed" (data-events.md); F&O's null
    # date is 1900-01-01, whatever the time (FoField.empty_value has the sources).
    return value is None or (isinstance(value, str) and value.startswith("1900-01-01"))


def _value(entity: FoEntity, field: FoField, value: Any) -> object:  # noqa: ANN401 - any JSON value
    if value is None:
        return None
    if field.enum is not None:
        return {"__type": OPTION_SET_TYPE, "Value": _OPTION_BASE + entity.enums[field.enum].index(value)}
    if field.type == "Edm.Date":
        return _dotnet_date(datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC))
    if field.type == "Edm.DateTimeOffset":
        return _dotnet_date(datetime.fromisoformat(value))
    return value


def _dotnet_date(moment: datetime) -> str:
    # WCF's JSON date form, as in the documented example ("\/Date(1506384247000)\/"; "\/" is JSON for "/").
    return f"/Date({int(moment.timestamp() * 1000)})/"


def _step(entity: FoEntity, message: str) -> dict[str, Any]:
    # The Dataverse step (sdkmessageprocessingstep) that forwards this message of this table.
    step = uuid.uuid5(_NAMESPACE, f"step:{entity.event_entity_name}:{message}")
    return {
        "Id": str(step),
        "KeyAttributes": [],
        "LogicalName": "sdkmessageprocessingstep",
        "Name": None,
        "RowVersion": None,
    }
