"""``$batch`` in OData v4's multipart/mixed form: change sets are atomic, plain requests run one by one.

https://docs.oasis-open.org/odata/odata/v4.01/odata-v4.01-part1-protocol.html#sec_BatchRequests
"""

from __future__ import annotations

import httpx
import orjson

from tests.twins.fo.conftest import customer


def _change_set(bodies: list[dict[str, object]], boundary: str = "changeset_1") -> str:
    parts = [
        f"--{boundary}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
        f"Content-ID: {i}\r\n\r\nPOST CustomersV3 HTTP/1.1\r\nContent-Type: application/json\r\n\r\n"
        f"{orjson.dumps(body).decode()}\r\n"
        for i, body in enumerate(bodies, start=1)
    ]
    return (
        f"Content-Type: multipart/mixed; boundary={boundary}\r\n\r\n" + "".join(parts) + f"--{boundary}--\r\n"
    )


def _batch(client: httpx.Client, *sections: str, prefer: str | None = None) -> httpx.Response:
    body = "".join(f"--batch_x\r\n{section}" for section in sections) + "--batch_x--\r\n"
    headers = {"Content-Type": "multipart/mixed; boundary=batch_x"}
    if prefer is not None:
        headers["Prefer"] = prefer
    return client.post("/data/$batch", content=body.encode(), headers=headers)


def _single(method: str, target: str, body: dict[str, object] | None = None) -> str:
    payload = "" if body is None else orjson.dumps(body).decode()
    kind = "Content-Type: application/json\r\n" if body is not None else ""
    return (
        "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
        f"{method} {target} HTTP/1.1\r\n{kind}\r\n{payload}\r\n"
    )


GET_PART = (
    "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
    "GET /data/CustomersV3?$select=CustomerAccount HTTP/1.1\r\nAccept: application/json\r\n\r\n"
)


def test_change_set_creates_all_and_get_sees_them(client: httpx.Client) -> None:
    """A change set of two creates commits both; a later GET in the same batch reads them."""
    response = _batch(client, _change_set([customer("US-001"), customer("US-002")]), GET_PART)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("multipart/mixed; boundary=batchresponse_")
    text = response.text
    assert text.count("HTTP/1.1 201 Created") == 2
    assert "Content-ID: 2" in text
    assert '"CustomerAccount":"US-002"' in text.split("HTTP/1.1 200 OK", 1)[1]


def test_failing_change_set_is_rolled_back(client: httpx.Client) -> None:
    """When the second create of a change set fails, the first is undone and the failure is answered."""
    bad = customer("US-002", ModifiedDateTime="2026-01-01T00:00:00Z")
    response = _batch(client, _change_set([customer("US-001"), bad]))
    assert response.status_code == 200
    assert "HTTP/1.1 400 Bad Request" in response.text
    assert "The property 'ModifiedDateTime' does not exist on type" in response.text
    assert "201 Created" not in response.text
    assert client.get("/data/CustomersV3").json()["value"] == []


def test_change_set_may_refer_to_a_row_it_created_before(client: httpx.Client) -> None:
    """A customer in a change set may name a group that an earlier request of the same change set creates."""
    group = {"dataAreaId": "usmf", "CustomerGroupId": "NEW", "Description": "New"}
    parts = (
        "--cs\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\nContent-ID: 1\r\n\r\n"
        "POST CustomerGroups HTTP/1.1\r\nContent-Type: application/json\r\n\r\n"
        f"{orjson.dumps(group).decode()}\r\n"
        "--cs\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\nContent-ID: 2\r\n\r\n"
        "POST CustomersV3 HTTP/1.1\r\nContent-Type: application/json\r\n\r\n"
        f"{orjson.dumps(customer('US-001', CustomerGroupId='NEW')).decode()}\r\n--cs--\r\n"
    )
    response = _batch(client, f"Content-Type: multipart/mixed; boundary=cs\r\n\r\n{parts}")
    assert response.text.count("HTTP/1.1 201 Created") == 2, response.text


def test_malformed_batch_is_a_400(client: httpx.Client) -> None:
    """A $batch body that is not multipart/mixed is refused with 400."""
    response = client.post("/data/$batch", content=b"{}", headers={"Content-Type": "application/json"})
    assert response.status_code == 400


def test_batch_stops_at_the_first_failed_request_by_default(client: httpx.Client) -> None:
    """Without odata.continue-on-error the batch answers 200 with the failure last: what follows never ran."""
    missing = _single("GET", "/data/CustomersV3(dataAreaId='usmf',CustomerAccount='NONE')?cross-company=true")
    create = _single("POST", "/data/CustomersV3", customer("US-001"))
    response = _batch(client, missing, create)
    assert response.status_code == 200
    assert "HTTP/1.1 404 Not Found" in response.text
    assert "201 Created" not in response.text
    assert "preference-applied" not in response.headers
    assert client.get("/data/CustomersV3").json()["value"] == []


def test_continue_on_error_runs_every_request_and_says_so(client: httpx.Client) -> None:
    """With odata.continue-on-error the requests after a failed one run; the answer names the preference."""
    missing = _single("GET", "/data/CustomersV3(dataAreaId='usmf',CustomerAccount='NONE')?cross-company=true")
    create = _single("POST", "/data/CustomersV3", customer("US-001"))
    response = _batch(client, missing, create, prefer="return=minimal, odata.continue-on-error")
    assert response.status_code == 200
    assert response.text.index("404 Not Found") < response.text.index("201 Created")
    assert response.headers["preference-applied"] == "odata.continue-on-error"
    assert [row["CustomerAccount"] for row in client.get("/data/CustomersV3").json()["value"]] == ["US-001"]


def test_a_failed_change_set_stops_the_batch_by_default(client: httpx.Client) -> None:
    """A change set that fails and rolls back stops the batch as a failed request does."""
    bad = customer("US-002", ModifiedDateTime="2026-01-01T00:00:00Z")
    response = _batch(client, _change_set([bad]), _single("POST", "/data/CustomersV3", customer("US-003")))
    assert "HTTP/1.1 400 Bad Request" in response.text
    assert "201 Created" not in response.text


def test_continue_on_error_false_stops_as_without_it(client: httpx.Client) -> None:
    """A preference given the value false is no preference: the batch stops at the failed request."""
    missing = _single("GET", "/data/CustomersV3(dataAreaId='usmf',CustomerAccount='NONE')?cross-company=true")
    create = _single("POST", "/data/CustomersV3", customer("US-001"))
    response = _batch(client, missing, create, prefer="odata.continue-on-error=false")
    assert "201 Created" not in response.text
    assert "preference-applied" not in response.headers


def test_a_parts_key_path_is_read_as_a_url_and_typed_as_a_request(client: httpx.Client) -> None:
    """A part's path is percent-decoded as any URL is (a key's space as %20), and its key literals are
    bound to the model as a request's are: an untyped enum key is refused there too."""
    assert client.post("/data/OrganizationHierarchyTypes", json={"Name": "Security org"}).status_code == 201
    purpose = {"HierarchyPurpose": "Security", "HierarchyType": "Security org"}
    assert client.post("/data/OrganizationHierarchyPurposes", json=purpose).status_code == 201
    enum = "Microsoft.Dynamics.DataEntities.HierarchyPurpose'Security'"
    typed = _single(
        "GET", f"/data/OrganizationHierarchyPurposes(HierarchyPurpose={enum},HierarchyType='Security%20org')"
    )
    untyped = _single(
        "GET",
        "/data/OrganizationHierarchyPurposes(HierarchyPurpose='Security',HierarchyType='Security%20org')",
    )
    response = _batch(client, typed, untyped, prefer="odata.continue-on-error")
    assert response.status_code == 200
    first, second = response.text.split("HTTP/1.1 ")[1:3]
    assert first.startswith("200")
    assert '"HierarchyType":"Security org"' in first
    assert second.startswith("400")


def _refusal(response: httpx.Response) -> str:
    assert response.status_code == 400, response.text
    message: str = response.json()["error"]["innererror"]["message"]
    return message


def test_a_part_is_read_as_the_odata_library_reads_it(client: httpx.Client) -> None:
    """Each part needs Content-Type application/http and Content-Transfer-Encoding binary (or is a change
    set); its request line is 'METHOD URL HTTP/1.1' with the method in capitals; a change set holds no GET,
    nor another change set. Otherwise the whole batch is refused, nothing run."""
    post = _single("POST", "/data/CustomersV3", customer("US-001"))
    no_encoding = post.replace("Content-Transfer-Encoding: binary\r\n", "")
    assert _refusal(_batch(client, no_encoding)) == (
        "A missing or invalid 'Content-Transfer-Encoding' header was found. The 'Content-Transfer-Encoding' "
        "header must be specified for each batch operation, and its value must be 'binary'."
    )
    assert "Content-Transfer-Encoding' header" in _refusal(
        _batch(client, post.replace("Encoding: binary", "Encoding: base64"))
    )
    assert _refusal(_batch(client, post.replace("Content-Type: application/http\r\n", ""))) == (
        "The 'Content-Type' header is missing. The 'Content-Type' header must be specified for each MIME "
        "part of a batch message."
    )
    assert _refusal(_batch(client, post.replace("application/http", "text/plain"))) == (
        "The 'Content-Type' header value 'text/plain' is invalid. When this is the start of the change set, "
        "the value must be 'multipart/mixed'; otherwise it must be 'application/http'."
    )
    assert _refusal(_batch(client, post.replace(" HTTP/1.1\r\n", "\r\n", 1))) == (
        "The request line 'POST /data/CustomersV3' is invalid. The request line at the start of each "
        "operation must be of the format 'HttpMethod RequestUrl HttpVersion'."
    )
    assert _refusal(_batch(client, post.replace(" HTTP/1.1\r\n", " HTTP/1.0\r\n", 1))) == (
        "The HTTP version 'HTTP/1.0' used in a batch operation request or response is not valid. The value "
        "must be 'HTTP/1.1'."
    )
    assert _refusal(_batch(client, post.replace("POST /data", "post /data"))) == (
        "The string 'post' cannot be converted into a supported HTTP method. The only supported HTTP methods "
        "are GET, DELETE, PUT, POST and PATCH."
    )
    get_in_change_set = _change_set([customer("US-001")]).replace("POST CustomersV3", "GET CustomersV3")
    assert _refusal(_batch(client, get_in_change_set)) == (
        "An invalid HTTP method 'GET' was detected for a request in a change set. Requests in change sets "
        "only support the HTTP methods 'POST', 'PUT', 'DELETE', and 'PATCH'."
    )
    nested = _change_set([customer("US-001")]).replace("application/http", "multipart/mixed; boundary=x", 1)
    assert _refusal(_batch(client, nested)) == "Nested change sets in a batch payload are not supported."
    # A refused batch runs none of its parts, the well-formed ones before the fault included.
    assert _refusal(_batch(client, post, no_encoding))
    assert client.get("/data/CustomersV3").json()["value"] == []


def test_a_part_content_type_with_parameters_is_an_operation(client: httpx.Client) -> None:
    """The library compares a part's type and subtype alone: 'application/http; msgtype=request' runs."""
    post = _single("POST", "/data/CustomersV3", customer("US-002"))
    answer = _batch(client, post.replace("application/http\r\n", "application/http; msgtype=request\r\n", 1))
    assert answer.status_code == 200
    assert " 201 " in answer.text
