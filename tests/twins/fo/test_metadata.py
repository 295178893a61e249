"""``GET /data/$metadata`` is CSDL (EDMX 4.0) generated from d365/fo, with dualbus's extension fields.

https://docs.oasis-open.org/odata/odata-csdl-xml/v4.01/odata-csdl-xml-v4.01.html
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import httpx

from dualbus.d365 import FO_EXTENSION_FIELDS, fo_entities
from dualbus.sandbox.fo import FoHandle

EDMX = "{http://docs.oasis-open.org/odata/ns/edmx}"
EDM = "{http://docs.oasis-open.org/odata/ns/edm}"
NAMESPACE = "Microsoft.Dynamics.DataEntities"


def _schema(client: httpx.Client) -> ET.Element:
    response = client.get("/data/$metadata")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    root = ET.fromstring(response.content)  # noqa: S314 - the twin's own document
    assert (root.tag, root.get("Version")) == (f"{EDMX}Edmx", "4.0")
    schema = root.find(f"{EDMX}DataServices/{EDM}Schema")
    assert schema is not None
    assert schema.get("Namespace") == NAMESPACE
    return schema


def test_metadata_lists_every_entity_set_with_its_type(client: httpx.Client) -> None:
    """The container has one EntitySet per d365/fo file, naming its qualified EntityType."""
    sets = {
        element.get("Name"): element.get("EntityType")
        for element in _schema(client).iterfind(f"{EDM}EntityContainer/{EDM}EntitySet")
    }
    assert sets == {name: f"{NAMESPACE}.{e.entity_type}" for name, e in fo_entities().items()}


def test_every_entity_type_has_its_keys_and_fields(client: httpx.Client) -> None:
    """Each EntityType's Key lists the schema's keys in order; its Properties, the fields and extensions."""
    types = {element.get("Name"): element for element in _schema(client).iterfind(f"{EDM}EntityType")}
    for entity in fo_entities().values():
        element = types[entity.entity_type]
        keys = [ref.get("Name") for ref in element.iterfind(f"{EDM}Key/{EDM}PropertyRef")]
        properties = [prop.get("Name") for prop in element.iterfind(f"{EDM}Property")]
        assert keys == list(entity.keys)
        assert properties == [*entity.fields, *FO_EXTENSION_FIELDS]


def test_properties_carry_type_nullability_length_and_enums(client: httpx.Client) -> None:
    """Types, Nullable=false, MaxLength and enum types come from the schema; EnumTypes list members."""
    schema = _schema(client)
    customer = schema.find(f"{EDM}EntityType[@Name='CustomerV3']")
    assert customer is not None
    props = {p.get("Name"): p.attrib for p in customer.iterfind(f"{EDM}Property")}
    assert props["CreditLimit"] == {"Name": "CreditLimit", "Type": "Edm.Decimal", "Nullable": "false"}
    assert props["OnHoldStatus"]["Type"] == f"{NAMESPACE}.CustVendorBlocked"
    # An X++ int64 field, as dualbus's extension is, can hold no null.
    assert props["DualbusSourceVersion"] == {
        "Name": "DualbusSourceVersion",
        "Type": "Edm.Int64",
        "Nullable": "false",
    }
    assert "DualbusSyncHash" not in props
    enums = {
        e.get("Name"): [m.get("Name") for m in e.iterfind(f"{EDM}Member")]
        for e in schema.iterfind(f"{EDM}EnumType")
    }
    assert enums["CustVendorBlocked"] == list(fo_entities()["CustomersV3"].enums["CustVendorBlocked"])
    used = {p.get("Type") for p in schema.iterfind(f"{EDM}EntityType/{EDM}Property")}
    assert {t.removeprefix(f"{NAMESPACE}.") for t in used if t and t.startswith(NAMESPACE)} <= set(enums)


def test_metadata_needs_a_bearer_token(fo: FoHandle) -> None:
    """Like /data, $metadata answers 401 without a token."""
    assert httpx.get(fo.url + "/data/$metadata").status_code == 401
