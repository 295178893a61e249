"""What a deployment adds to the standard systems for dualbus, and nothing else: docs/deploy.md tells how.

Not facts about Dynamics 365 but dualbus's own extensions, in the way dual-write ships solutions of its own.
The twins model exactly these on every synced entity and table.

- F&O: an entity extension on each synced data entity with one field, ``DualbusSourceVersion``, backed by a
  field added to the entity's root table: the Dataverse version dualbus last applied to the row. The stale
  guard reads it, and F&O events carry it as their base version, which decides concurrent edits
  (docs/processing.md). Standard entities expose no modified-by or modified-time field; dualbus needs none.
  A second field, ``DualbusWriteDigest``, holds a digest of the row as dualbus's last write left it, by which
  the F&O producer knows that write when it comes back as a data event and does not publish it
  (``shared.fo_echo``): F&O records no modifier dualbus could recognise its own writes by.
- Dataverse: a whole-number column ``dualbus_sourceversion`` on each synced table (the F&O version dualbus
  last applied).
"""

from __future__ import annotations

from types import MappingProxyType

from dualbus.d365._dataverse import DvColumn
from dualbus.d365._fo import FoEntity, FoField

__all__ = [
    "DATAVERSE_VERSION_COLUMN",
    "DV_EXTENSION_COLUMNS",
    "FO_EXTENSION_FIELDS",
    "FO_VERSION_FIELD",
    "FO_WRITE_DIGEST_FIELD",
    "fo_deployed_fields",
]

FO_VERSION_FIELD = "DualbusSourceVersion"
FO_WRITE_DIGEST_FIELD = "DualbusWriteDigest"
# A SHA-256 digest in hexadecimal (shared.fo_echo).
_DIGEST_LENGTH = 64
DATAVERSE_VERSION_COLUMN = "dualbus_sourceversion"

FO_EXTENSION_FIELDS = MappingProxyType(
    # An X++ int64 field: never null, 0 on a row dualbus has not written (see FoField.empty_value).
    {
        FO_VERSION_FIELD: FoField(type="Edm.Int64", nullable=False, label="dualbus source version"),
        # An X++ string field: never null, empty on a row dualbus has not written.
        FO_WRITE_DIGEST_FIELD: FoField(
            type="Edm.String", max_length=_DIGEST_LENGTH, nullable=False, label="dualbus write digest"
        ),
    }
)
DV_EXTENSION_COLUMNS = MappingProxyType({DATAVERSE_VERSION_COLUMN: DvColumn(type="BigInt", min=0)})


def fo_deployed_fields(entity: FoEntity) -> dict[str, FoField]:
    """A synced entity's fields as a deployment has them: the published ones and dualbus's extension."""
    return {**entity.fields, **FO_EXTENSION_FIELDS}
