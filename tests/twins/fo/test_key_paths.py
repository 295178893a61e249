"""A key path sent straight over HTTP is decoded twice, as F&O does (sources in d365/_fo_key_paths.py): a
'/' or '\\' encoded once leaves no route, a '+' encoded once reads as a space; encoded twice, they find the
row. A $filter is decoded once."""

from __future__ import annotations

import httpx
import pytest

from dualbus.d365 import fo_entities, fo_key_segment
from tests.twins.fo.conftest import customer


def _path(account: str, encoded: str | None = None) -> str:
    key = encoded or fo_key_segment(
        fo_entities()["CustomersV3"], {"dataAreaId": "usmf", "CustomerAccount": account}
    )
    return f"/data/CustomersV3({key})"


def _create(client: httpx.Client, account: str) -> httpx.Response:
    response = client.post("/data/CustomersV3", json=customer(account))
    assert response.status_code == 201, response.text
    return response


@pytest.mark.parametrize(("account", "once"), [("A/B", "A%2FB"), ("A\\B", "A%5CB")])
def test_a_separator_encoded_once_leaves_no_route_and_encoded_twice_finds_the_row(
    client: httpx.Client, account: str, once: str
) -> None:
    """The web front decoded %2F / %5C before routing: 404 with its own message, naming the decoded URI."""
    _create(client, account)
    for method in ("GET", "PATCH", "DELETE"):
        body = {"OrganizationName": "x"} if method == "PATCH" else None
        refused = client.request(
            method, _path(account, f"dataAreaId='usmf',CustomerAccount='{once}'"), json=body
        )
        assert refused.status_code == 404
        assert refused.json()["Message"] == (
            "No HTTP resource was found that matches the request URI "
            f"'{client.base_url}/data/CustomersV3(dataAreaId='usmf',CustomerAccount='{account}')'. "
            "No route data was found for this request."
        )
    assert client.patch(_path(account), json={"OrganizationName": "Renamed"}).status_code == 204
    assert client.get(_path(account)).json()["OrganizationName"] == "Renamed"
    assert client.delete(_path(account)).status_code == 204
    assert client.get(_path(account)).status_code == 404


def test_a_plus_encoded_once_reads_as_a_space(client: httpx.Client) -> None:
    """A once-encoded '+' names the row with a space there; encoded twice, the row with the plus sign."""
    _create(client, "A+B")
    _create(client, "A B")
    once = client.get(_path("", "dataAreaId='usmf',CustomerAccount='A%2BB'"))
    assert once.json()["CustomerAccount"] == "A B"
    assert client.get(_path("A+B")).json()["CustomerAccount"] == "A+B"


def test_a_percent_sign_is_read_from_its_twice_encoded_form(client: httpx.Client) -> None:
    """'%41' in a key is text, not an escape, once the path carries it as %252541."""
    _create(client, "P%41")
    assert client.get(_path("P%41")).json()["CustomerAccount"] == "P%41"
    assert client.get(_path("", "dataAreaId='usmf',CustomerAccount='P%2541'")).status_code == 404


def test_a_filter_finds_a_key_with_a_slash_encoded_once(client: httpx.Client) -> None:
    """A query string is not routed: $filter reads 'A/B' from the once-encoded value."""
    _create(client, "A/B")
    rows = client.get("/data/CustomersV3", params={"$filter": "CustomerAccount eq 'A/B'"}).json()["value"]
    assert [row["CustomerAccount"] for row in rows] == ["A/B"]


def test_a_created_rows_location_is_encoded_as_its_key_path_must_be(client: httpx.Client) -> None:
    """The Location of a row whose key holds a slash reads the row back."""
    location = _create(client, "L/1+2").headers["Location"]
    assert location.endswith("CustomerAccount='L%252F1%252B2')")
    assert client.get(location).json()["CustomerAccount"] == "L/1+2"
