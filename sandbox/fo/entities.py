"""The F&O data entities the twin serves: exactly those in ``d365/fo``, each with dualbus's extension fields.

The entities, fields, keys, enums and relations are the published contracts ``d365.fo_entities()`` reads
(every name there carries its public source). A real deployment adds ``d365.FO_EXTENSION_FIELDS`` to every
synced entity (docs/deploy.md), so the twin adds exactly those to every entity, and nothing else.

Each entity also gets a stable small id, standing in for the data entity id that F&O puts in the first four
bytes of a row's virtual-entity GUID ("the data entity ID in the first 4 bytes, and the record ID of the root
data source in the entity as the last 8 bytes"):
https://github.com/MicrosoftDocs/dynamics-365-unified-operations-public/blob/a54c1253b5bbacea156e32bd50798b56c344c72c/articles/fin-ops-core/dev-itpro/power-platform/entity-modeling.md
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from types import MappingProxyType

from dualbus.d365 import FoEntity, fo_deployed_fields, fo_entities

__all__ = ["ENTITIES", "ENTITY_IDS", "UNPREPARED_ENTITIES", "entity_named", "served_entities"]

_ID_BITS = 0xFFFF


def _with_extension_fields(entity: FoEntity) -> FoEntity:
    # model_copy skips validation: the extension fields are checked where they are defined.
    return entity.model_copy(update={"fields": fo_deployed_fields(entity)})


def _entity_ids(entities: Mapping[str, FoEntity]) -> Mapping[str, int]:
    # Derived from the AOT name, not from the file order: adding an entity moves no other entity's GUIDs.
    ids = {name: (zlib.crc32(e.aot_name.encode()) & _ID_BITS) or 1 for name, e in entities.items()}
    if len(set(ids.values())) != len(ids):
        raise RuntimeError(f"two F&O entities got the same twin entity id: {ids}")
    return MappingProxyType(ids)


ENTITIES: Mapping[str, FoEntity] = MappingProxyType(
    {name: _with_extension_fields(entity) for name, entity in fo_entities().items()}
)
ENTITY_IDS: Mapping[str, int] = _entity_ids(ENTITIES)
# The entities of a tenant not yet prepared for dualbus (docs/deploy.md): the published fields alone.
UNPREPARED_ENTITIES: Mapping[str, FoEntity] = MappingProxyType(dict(fo_entities()))


def served_entities(*, prepared: bool) -> Mapping[str, FoEntity]:
    """The entities of a tenant prepared for dualbus (with the extension fields), or of one not yet."""
    return ENTITIES if prepared else UNPREPARED_ENTITIES


def entity_named(name: str) -> FoEntity | None:
    """The entity with this OData entity set name (case-sensitive, as OData is), or None."""
    return ENTITIES.get(name)
