"""RemoteExecutionContexts of F&O data events for tests, in the shape of the documented example.

See fixtures/README.md: the shape is the documented Dataverse one, the names F&O's (``mserp_`` tables and
columns); values are test data.
"""

from __future__ import annotations

from typing import Any

from dualbus.d365 import fo_entities

ENTITY_TYPE = "Entity:http://schemas.microsoft.com/xrm/2011/Contracts"
OPTION_SET_TYPE = "OptionSetValue:http://schemas.microsoft.com/xrm/2011/Contracts"


def _entity(entity_set: str, row_id: str, values: dict[str, Any]) -> dict[str, Any]:
    entity = fo_entities()[entity_set]
    attributes, formatted = [], []
    for name, value in values.items():
        key = f"mserp_{name.lower()}"
        field = entity.fields.get(name)
        if field is not None and field.enum is not None and value is not None:
            # The option's integer is arbitrary on purpose: only the member name may be relied on.
            attributes.append({"key": key, "value": {"__type": OPTION_SET_TYPE, "Value": 200_000_077}})
            formatted.append({"key": key, "value": value})
        else:
            attributes.append({"key": key, "value": value})
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


def data_event(
    message: str,
    entity_set: str,
    row_id: str,
    target: dict[str, Any],
    pre_image: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One data event of ``entity_set``'s virtual table (``message``: OnExternalCreated, ...)."""
    parameters = [{"key": "Target", "value": _entity(entity_set, row_id, target)}]
    if pre_image is not None:
        parameters.append({"key": "PreImage", "value": _entity(entity_set, row_id, pre_image)})
    return {
        "BusinessUnitId": "e2b9dd85-e89e-e711-8122-000d3aa2331c",
        "CorrelationId": "b374239d-4233-41a9-8b17-a86cb4f737b5",
        "Depth": 1,
        "InitiatingUserId": "75c2dd85-e89e-e711-8122-000d3aa2331c",
        "InputParameters": parameters,
        "MessageName": message,
        "OperationCreatedOn": "/Date(1767323045000)/",
        "OperationId": "4af10637-4ea2-e711-8122-000d3aa2331c",
        "PrimaryEntityId": row_id,
        "PrimaryEntityName": fo_entities()[entity_set].event_entity_name,
        "Stage": 40,
    }
