"""``GET /data/$metadata``: the twin's CSDL (EDMX 4.0), generated from the schema files it serves.

One EntityType per entity (Key with PropertyRef, Property with Name, Type, Nullable="false" where the field
is not nullable and MaxLength where one is known), one EnumType per enum (Members in order; CSDL numbers them
from 0 when no Value is given, and the schema files keep no values), and an EntityContainer with each entity
set, in the namespace F&O uses, ``Microsoft.Dynamics.DataEntities``. Standard entities come from
``d365/fo``; the extension fields a deployment adds (``d365.FO_EXTENSION_FIELDS``) are on every entity of a
prepared tenant and on none of an unprepared one (``UNPREPARED_ENTITIES``).
CSDL: https://docs.oasis-open.org/odata/odata-csdl-xml/v4.01/odata-csdl-xml-v4.01.html
The container name ``Resources`` is what F&O's generated OData clients call it, e.g.
https://github.com/microsoft/Dynamics-AX-Integration/issues/34 ("ReadLegalEntities(Resources context)").
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping

from dualbus.d365 import FO_NAMESPACE, FoEntity, FoField

__all__ = ["NAMESPACE", "metadata_document"]

NAMESPACE = FO_NAMESPACE
_EDMX = "http://docs.oasis-open.org/odata/ns/edmx"
_EDM = "http://docs.oasis-open.org/odata/ns/edm"
_CONTAINER = "Resources"


def metadata_document(entities: Mapping[str, FoEntity]) -> bytes:
    """The CSDL XML document of ``entities``, every entity the twin serves."""
    root = ET.Element("edmx:Edmx", {"Version": "4.0", "xmlns:edmx": _EDMX})
    services = ET.SubElement(root, "edmx:DataServices")
    schema = ET.SubElement(services, "Schema", {"Namespace": NAMESPACE, "xmlns": _EDM})
    for entity in entities.values():
        schema.append(_entity_type(entity))
    for name, members in sorted(_enums(entities).items()):
        enum_type = ET.SubElement(schema, "EnumType", {"Name": name})
        for member in members:
            ET.SubElement(enum_type, "Member", {"Name": member})
    container = ET.SubElement(schema, "EntityContainer", {"Name": _CONTAINER})
    for entity in entities.values():
        qualified = f"{NAMESPACE}.{entity.entity_type}"
        ET.SubElement(container, "EntitySet", {"Name": entity.entity_set, "EntityType": qualified})
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document


def _entity_type(entity: FoEntity) -> ET.Element:
    element = ET.Element("EntityType", {"Name": entity.entity_type})
    key = ET.SubElement(element, "Key")
    for name in entity.keys:
        ET.SubElement(key, "PropertyRef", {"Name": name})
    for name, field in entity.fields.items():
        ET.SubElement(element, "Property", _property(name, field))
    return element


def _property(name: str, field: FoField) -> dict[str, str]:
    attributes = {"Name": name, "Type": field.qualified_type}
    if not field.nullable:
        attributes["Nullable"] = "false"
    if field.max_length is not None:
        attributes["MaxLength"] = str(field.max_length)
    return attributes


def _enums(entities: Mapping[str, FoEntity]) -> dict[str, tuple[str, ...]]:
    # One EnumType per name: two entity files naming the same enum must agree on its members.
    found: dict[str, tuple[str, ...]] = {}
    for entity in entities.values():
        for name, members in entity.enums.items():
            if found.setdefault(name, members) != members:
                raise RuntimeError(f"enum {name} has different members in {entity.entity_set}")
    return found
