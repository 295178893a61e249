"""A twin started with ``prepared=False`` is a tenant before docs/deploy.md: dualbus's extension fields are
in none of its answers, ``$metadata`` and data events included, not only refused in requests."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from dualbus.d365 import FO_EXTENSION_FIELDS, fo_entities
from dualbus.sandbox.fo import FoHandle, start_fo
from tests.twins.fo.conftest import Webhook, customer, seed_references

EDMX = "{http://docs.oasis-open.org/odata/ns/edmx}"
EDM = "{http://docs.oasis-open.org/odata/ns/edm}"


@pytest.fixture(params=[True, False], ids=["prepared", "unprepared"])
def twin(request: pytest.FixtureRequest) -> Iterator[tuple[bool, FoHandle]]:
    with start_fo(companies={"workload": "DEMF"}, prepared=request.param) as handle:
        yield request.param, handle


def _properties(client: httpx.Client) -> dict[str, list[str]]:
    response = client.get("/data/$metadata")
    assert response.status_code == 200
    root = ET.fromstring(response.content)  # noqa: S314 - the twin's own document
    types = root.iterfind(f"{EDMX}DataServices/{EDM}Schema/{EDM}EntityType")
    return {str(t.get("Name")): [str(p.get("Name")) for p in t.iterfind(f"{EDM}Property")] for t in types}


def test_metadata_lists_the_extension_fields_on_a_prepared_tenant_only(twin: tuple[bool, FoHandle]) -> None:
    """Every EntityType has the published fields; the extension fields follow them only once prepared."""
    prepared, fo = twin
    with fo.client("dualbus") as client:
        properties = _properties(client)
    for entity in fo_entities().values():
        extensions = list(FO_EXTENSION_FIELDS) if prepared else []
        assert properties[entity.entity_type] == [*entity.fields, *extensions]


def test_a_data_event_names_the_extension_fields_on_a_prepared_tenant_only(
    twin: tuple[bool, FoHandle], webhook: Webhook
) -> None:
    """A create's Target carries every field written: dualbus's writes name the extension fields where the
    tenant has them (and are refused where it has not, see tests/integration/consumers)."""
    prepared, fo = twin
    fo.twin.add_webhook(webhook.url, ["CustomersV3"])
    written = {"DualbusSourceVersion": 7, "DualbusWriteDigest": "d" * 64} if prepared else {}
    with fo.client("dualbus") as client:
        seed_references(client)
        assert client.post("/data/CustomersV3", json=customer("US-001", **written)).status_code == 201
    assert fo.twin.events.flush(timeout=10)
    [created] = [e for e in webhook.received if e["MessageName"] == "OnExternalCreated"]
    parameters: dict[str, Any] = {p["key"]: p["value"] for p in created["InputParameters"]}
    attributes = {a["key"] for a in parameters["Target"]["Attributes"]}
    extensions = {f"mserp_{name.lower()}" for name in FO_EXTENSION_FIELDS}
    assert "mserp_customeraccount" in attributes
    assert (extensions <= attributes) is prepared
    assert (extensions & attributes == set()) is not prepared
