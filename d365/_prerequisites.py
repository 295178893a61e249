"""What a deployment adds to the standard systems for dualbus, and nothing else: docs/deploy.md tells how.

Not facts about Dynamics 365 but dualbus's own extensions, in the way dual-write ships solutions of its own.
The twins model exactly these on every synced entity and table.

- F&O: an entity extension on each synced data entity with two fields, backed by fields added to the
  entity's root table: ``DualbusSourceVersion`` (the Dataverse version dualbus last applied, for the stale
  guard) and ``DualbusSyncHash`` (a digest of the mapped values dualbus last wrote, so that the F&O producer
  can tell its own writes from later edits without a modified-by or modified-time field, which standard
  entities do not expose).
- Dataverse: a whole-number column ``dualbus_sourceversion`` on each synced table (the F&O version dualbus
  last applied).
"""

from __future__ import annotations

from types import MappingProxyType

from d365._dataverse import DvColumn
from d365._fo import FoField

__all__ = [
    "DATAVERSE_VERSION_COLUMN",
    "DV_EXTENSION_COLUMNS",
    "FO_EXTENSION_FIELDS",
    "FO_HASH_FIELD",
    "FO_VERSION_FIELD",
]

FO_VERSION_FIELD = "DualbusSourceVersion"
FO_HASH_FIELD = "DualbusSyncHash"
DATAVERSE_VERSION_COLUMN = "dualbus_sourceversion"
# A SHA-256 digest in hex.
_HASH_LENGTH = 64

FO_EXTENSION_FIELDS = MappingProxyType(
    {
        FO_VERSION_FIELD: FoField(type="Edm.Int64", nullable=True, label="dualbus source version"),
        FO_HASH_FIELD: FoField(type="Edm.String", max_length=_HASH_LENGTH, label="dualbus sync hash"),
    }
)
DV_EXTENSION_COLUMNS = MappingProxyType(
    {DATAVERSE_VERSION_COLUMN: DvColumn(type="BigInt", min=0)}
)
