"""The twin answers the Web API's documented examples the documented way (sources: fixtures/README.md)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.twins.dataverse.support import error_of

_FIXTURES = Path(__file__).parent / "fixtures"
_TRUNCATED = "<truncated for brevity>"
_API = re.compile(r"^\[Organization UR[Ii]\]/api/data/v9\.\d/")
_EXAMPLE_KEY = re.compile(r"example_records\(example_key1=(\d+),example_key2=(\d+)\)")


def _load(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = orjson.loads((_FIXTURES / name).read_bytes())
    return loaded


def _org(client: httpx.Client) -> str:
    return str(client.base_url).removesuffix("/api/data/v9.2/")


def _documented(client: httpx.Client, text: str) -> str:
    return text.replace("[Organization URI]", _org(client)).replace("[Organization Uri]", _org(client))


def _says(actual: str, documented: str) -> bool:
    """Whether a message is the documented one (up to the page's truncation mark, where it has one)."""
    if _TRUNCATED in documented:
        return actual.startswith(documented.split(_TRUNCATED, maxsplit=1)[0].rstrip())
    return actual == documented


_CLIENT_ERRORS = _load("client_errors.json")["cases"]
_KEY_FORMS = _load("alternate_key_urls.json")
_UPSERTS = _load("upsert_examples.json")["examples"]
_VALUE_ERRORS = _load("value_errors.json")


@pytest.mark.parametrize("case", _CLIENT_ERRORS, ids=[case["name"][:40] for case in _CLIENT_ERRORS])
def test_documented_client_errors_are_answered_as_documented(
    client: httpx.Client, case: dict[str, Any]
) -> None:
    """Each request of the client-errors page gets the documented status, error code and message."""
    request, expected = case["request"], case["response"]
    response = client.request(request["method"], _API.sub("", request["url"]), json=request.get("body"))
    status, code, message = error_of(response)
    assert (status, code) == (expected["status"], expected["error"]["code"])
    assert _says(message, _documented(client, expected["error"]["message"])), message


@pytest.mark.parametrize("form", [f for f in _KEY_FORMS["forms"] if f["situation"] == "With a primary key"])
def test_documented_primary_key_forms_address_the_row(client: httpx.Client, form: dict[str, str]) -> None:
    """Both documented primary-key forms, bare GUID and named accountid, address the same row."""
    created = client.post("accounts", json={"accountid": "00000000-0000-0000-0000-000000000001", "name": "A"})
    assert created.status_code == 204
    response = client.get(form["example"].lstrip("/"))
    assert response.status_code == 200
    assert response.json()["name"] == "A"


@pytest.mark.parametrize("form", [f for f in _KEY_FORMS["forms"] if f["situation"] != "With a primary key"])
def test_documented_key_forms_on_columns_that_are_no_key_get_the_documented_error(
    client: httpx.Client, form: dict[str, str]
) -> None:
    """Documented key examples name no key of the twin's tables: the documented error answers."""
    entity_set = form["example"].lstrip("/").split("(")[0]
    logical = {"accounts": "account", "contacts": "contact"}[entity_set]
    status, code, message = error_of(client.get(form["example"].lstrip("/")))
    assert (status, code) == (400, "0x0")
    assert message == _KEY_FORMS["invalid_key_message"].replace("<table logical name>", logical)


def test_documented_lookup_property_form_addresses_the_real_key(client: httpx.Client, company: str) -> None:
    """The lookup-property form on the account key (company, number) creates, then reads, the row."""
    url = f"accounts(_msdyn_company_value={company},accountnumber='ABC123')"
    assert client.patch(url, json={"name": "Contoso"}).status_code == 204
    row = client.get(url).json()
    assert (row["_msdyn_company_value"], row["accountnumber"], row["name"]) == (company, "ABC123", "Contoso")
    bare = error_of(client.get(f"accounts(msdyn_company={company},accountnumber='ABC123')"))
    assert bare[2] == _KEY_FORMS["invalid_key_message"].replace("<table logical name>", "account")


def _on_accounts(text: str, company: str) -> str:
    """A documented example_records text, said of the twin's accounts (see fixtures/README.md)."""
    text = _EXAMPLE_KEY.sub(
        lambda m: f"accounts(_msdyn_company_value={company},accountnumber='{m[1]}-{m[2]}')", text
    )
    return text.replace("example_records", "accounts").replace("example_recordid", "accountid")


def test_documented_upsert_examples_answer_as_documented(client: httpx.Client, company: str) -> None:
    """The upsert page's four requests, replayed in order, get its statuses, headers and body shapes."""
    for example in _UPSERTS:
        request, expected = example["request"], example["response"]
        url = _on_accounts(_documented(client, request["url"]), company)
        body = {"name": request["body"]["example_name"]}
        response = client.request("PATCH", url, json=body, headers=request["headers"])
        assert response.status_code == expected["status"], example["name"]
        for name, value in expected.get("headers", {}).items():
            assert response.headers[name] == _on_accounts(_documented(client, value), company)
        if "body" in expected:
            _assert_same_shape(response.json(), expected["body"], client, company)


def _assert_same_shape(
    actual: dict[str, Any], documented: dict[str, Any], client: httpx.Client, company: str
) -> None:
    assert set(actual) == {_on_accounts(name, company) for name in documented}
    assert actual["@odata.context"] == _on_accounts(
        _documented(client, documented["@odata.context"]), company
    )
    assert re.fullmatch(r'W/"\d+"', actual["@odata.etag"])


_CODES = {error["name"]: error for error in _VALUE_ERRORS["codes"]["errors"]}
_VALUE_CASES = [
    ("PicklistValueOutOfRange", "accounts", {"msdyn_onholdstatus": 1}),
    ("IntegerValueOutOfRange", "accounts", {"numberofemployees": -1}),
    ("DecimalValueOutOfRange", "transactioncurrencies", {"exchangerate": 0}),
    ("MoneySizeExceeded", "accounts", {"creditlimit": -1}),
    ("MinMaxValidationFailed", "accounts", {"address1_latitude": 90.5}),
]


@pytest.mark.parametrize(("name", "entity_set", "body"), _VALUE_CASES, ids=[c[0] for c in _VALUE_CASES])
def test_value_errors_carry_the_documented_codes_and_texts(
    client: httpx.Client, name: str, entity_set: str, body: dict[str, object]
) -> None:
    """A value outside its column's options or range gets the documented error code and message, with 400."""
    assert error_of(client.post(entity_set, json=body)) == (
        400,
        _CODES[name]["code"],
        _CODES[name]["message"],
    )


def test_string_length_error_is_worded_as_the_real_response(client: httpx.Client) -> None:
    """A too-long string gets StringLengthTooLong's code, status 400 and the wording of the real response."""
    documented = _VALUE_ERRORS["string_length_response"]
    expected = (
        documented["message"]
        .replace("admin_sourcetype", "name")
        .replace("admin_flowresource", "account")
        .replace("'1000'", "'160'")
    )
    refusal = error_of(client.post("accounts", json={"name": "x" * 161}))
    assert refusal == (documented["status"], _CODES["StringLengthTooLong"]["code"], expected)
