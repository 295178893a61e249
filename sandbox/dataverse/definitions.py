"""Table definitions as the Web API serves them, as far as dualbus asks: a table's alternate keys.

``GET EntityDefinitions(LogicalName='<table>')/Keys?$select=KeyAttributes,EntityKeyIndexStatus`` lists the
table's alternate keys (``EntityKeyMetadata``) through the ``Keys`` collection-valued navigation property of
``EntityMetadata``, whose entity set is ``EntityDefinitions`` and which is addressed by its ``LogicalName``:
- the path: query-metadata-web-api.md, "Querying EntityMetadata attributes" and "Querying relationship
  metadata" (``EntityDefinitions(LogicalName='account')/OneToManyRelationships?$select=SchemaName``), in
  https://github.com/MicrosoftDocs/powerapps-docs/blob/0cc35097731bf86a10ee72940b118f010d47ce13/
  powerapps-docs/developer/data-platform/webapi/query-metadata-web-api.md;
- ``Keys``: https://github.com/MicrosoftDocs/dynamics-365-customer-engagement/blob/
  50950770d7f9b83c895f319bac52868309e505dd/progref/webapireference/metadataentitytypes/entitymetadata.md;
- ``KeyAttributes`` (the columns' logical names), ``EntityKeyIndexStatus``, ``MetadataId``:
  https://github.com/MicrosoftDocs/dynamics-365-customer-engagement/blob/
  32235414510df6cc970233881061a9ce1c812a46/progref/webapireference/metadataentitytypes/entitykeymetadata.md;
- an enumeration's value travels as its member's name (``"OptionSetType": "Picklist"`` in the same
  query-metadata page's response), here ``Active``: every key the twin holds has its index built.

A table the twin serves without alternate keys (``start_dataverse(without_keys=...)``) lists none, and its
rows cannot be addressed by key either (``keys.row_key``): a tenant where docs/deploy.md's step 3 was not
done.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping

from dualbus.d365 import DvTable
from dualbus.sandbox.dataverse.errors import resource_not_found, unknown_query_property
from dualbus.sandbox.dataverse.messages import ApiRequest, ApiResponse, Context, json_response

__all__ = ["keys_of", "keys_table"]

_KEYS_PATH = re.compile(r"^EntityDefinitions\(LogicalName='(?P<name>[^']*)'\)/Keys$")
_KEY_TYPE = "EntityKeyMetadata"
_PROPERTIES = ("MetadataId", "KeyAttributes", "EntityKeyIndexStatus", "EntityLogicalName")
_BUILT = "Active"
# Ids of the keys' definitions: the same for the same table and columns, run after run.
_KEY_IDS = uuid.UUID("5b0f3c4e-8d2a-4e61-9f7b-2c1d0e3a4b5c")


def keys_table(path: str) -> str | None:
    """The logical name of the table whose keys ``path`` reads; None for a path of rows."""
    match = _KEYS_PATH.match(path)
    return match.group("name") if match else None


def keys_of(tables: Mapping[str, DvTable], context: Context, request: ApiRequest, name: str) -> ApiResponse:
    """Table ``name``'s alternate keys, with the properties ``$select`` names (all of them without one)."""
    table = next((t for t in tables.values() if t.logical_name == name), None)
    if table is None:
        raise resource_not_found(f"EntityDefinitions(LogicalName='{name}')")
    selected = _selected(request.query.get("$select"))
    value = []
    for key in table.alternate_keys:
        entry: dict[str, object] = {
            "MetadataId": str(uuid.uuid5(_KEY_IDS, f"{name}:{','.join(key.columns)}")),
            "KeyAttributes": list(key.columns),
            "EntityKeyIndexStatus": _BUILT,
            "EntityLogicalName": name,
        }
        value.append({prop: entry[prop] for prop in _PROPERTIES if prop in selected})
    context_url = context.api_url(f"$metadata#EntityDefinitions('{name}')/Keys")
    return json_response(200, {"@odata.context": context_url, "value": value})


def _selected(select: str | None) -> frozenset[str]:
    """The properties to answer: the key (``MetadataId``) always, and those ``$select`` names."""
    if not select:
        return frozenset(_PROPERTIES)
    names = {part.strip() for part in select.split(",") if part.strip()}
    for name in names:
        if name not in _PROPERTIES:
            raise unknown_query_property(_KEY_TYPE, name)
    return frozenset(names | {"MetadataId"})
