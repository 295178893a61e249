"""A PATCH or DELETE whose key names no row: F&O's 400 "No resources were found when selecting for update.",
in its error envelope, not OData's 404; a GET by key of a missing row still answers 404.

Sources (sandbox/fo/errors.py): a client handling that 400 as "the record no longer exists",
https://github.com/hotgluexyz/target-dynamics-finance/blob/ae05880f01239475781427e00b5df06a6da76e16/target_dynamics_finance/client.py
and the envelope of a real F&O 400 to a PATCH, https://github.com/saintsystems/dynamics-sdk-php/issues/8
"""

from __future__ import annotations

import httpx
import orjson
import pytest

from tests.twins.fo.conftest import KEY_PATH, customer

CUSTOMERS = "/data/CustomersV3"
NO_ROW = "No resources were found when selecting for update."
# The inner type F&O names is not published: the twin leaves it empty, as it does the stack trace.
REFUSAL = {
    "error": {
        "code": "",
        "message": "An error has occurred.",
        "innererror": {"message": NO_ROW, "type": "", "stacktrace": ""},
    }
}


def _write(client: httpx.Client, method: str, path: str, **params: str) -> httpx.Response:
    body = {"OrganizationName": "Renamed"} if method == "PATCH" else None
    return client.request(method, path, json=body, params=params)


@pytest.mark.parametrize("method", ["PATCH", "DELETE"])
def test_a_write_to_a_row_that_never_existed_is_refused_with_400(client: httpx.Client, method: str) -> None:
    """PATCH or DELETE of a key no row has answers 400 with F&O's inner message, and creates nothing."""
    response = _write(client, method, KEY_PATH, **{"cross-company": "true"})
    assert response.status_code == 400, response.text
    assert response.json() == REFUSAL
    assert client.get(CUSTOMERS).json()["value"] == []


@pytest.mark.parametrize("method", ["PATCH", "DELETE"])
def test_a_write_to_a_row_deleted_meanwhile_is_refused_with_400(client: httpx.Client, method: str) -> None:
    """A row deleted by someone else since it was read: the next PATCH or DELETE of it answers the 400,
    where a GET by its key path still answers OData's 404."""
    assert client.post(CUSTOMERS, json=customer("US-001")).status_code == 201
    assert client.delete(KEY_PATH).status_code == 204
    assert client.get(KEY_PATH).status_code == 404
    response = _write(client, method, KEY_PATH)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["innererror"]["message"] == NO_ROW


def test_another_companys_row_named_without_cross_company_is_missing_to_a_write(client: httpx.Client) -> None:
    """A write outside the caller's company, without cross-company=true, finds no row: the same 400;
    with it, the row is written."""
    assert client.post(CUSTOMERS, json=customer("DE-001", "demf")).status_code == 201
    path = f"{CUSTOMERS}(dataAreaId='demf',CustomerAccount='DE-001')"
    refused = _write(client, "PATCH", path)
    assert refused.status_code == 400
    assert refused.json() == REFUSAL
    assert _write(client, "PATCH", path, **{"cross-company": "true"}).status_code == 204


@pytest.mark.parametrize("method", ["PATCH", "DELETE"])
def test_a_write_to_a_missing_row_fails_its_change_set(client: httpx.Client, method: str) -> None:
    """Inside a $batch change set the missing row's 400 is the change set's answer, and the create before it
    in the same change set is rolled back."""
    create = _part("POST", "CustomersV3", 1, customer("US-002"))
    write = _part(
        method, "CustomersV3(dataAreaId='usmf',CustomerAccount='US-001')", 2, {"OrganizationName": "x"}
    )
    change_set = (
        f"Content-Type: multipart/mixed; boundary=cs\r\n\r\n--cs\r\n{create}--cs\r\n{write}--cs--\r\n"
    )
    body = f"--batch_x\r\n{change_set}--batch_x--\r\n"
    headers = {"Content-Type": "multipart/mixed; boundary=batch_x"}
    response = client.post("/data/$batch", content=body.encode(), headers=headers)
    assert response.status_code == 200
    answered = response.text
    assert "HTTP/1.1 400 Bad Request" in answered
    assert "Content-ID: 2" in answered
    assert "201 Created" not in answered
    assert orjson.loads(answered[answered.index("{") : answered.rindex("}") + 1]) == REFUSAL
    assert client.get(CUSTOMERS).json()["value"] == []


def _part(method: str, target: str, content_id: int, body: dict[str, object]) -> str:
    payload = "" if method == "DELETE" else orjson.dumps(body).decode()
    kind = "" if method == "DELETE" else "Content-Type: application/json\r\n"
    return (
        "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
        f"Content-ID: {content_id}\r\n\r\n{method} {target} HTTP/1.1\r\n{kind}\r\n{payload}\r\n"
    )
