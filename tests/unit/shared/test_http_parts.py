"""A $batch part's answer: the request it answers is there when asked for (error messages read it)."""

from __future__ import annotations

import httpx
import pytest

from dualbus.shared.http import built_response

URL = "https://org.example.com/api/data/v9.2/accounts(accountnumber='C-1')?$select=name"


def test_a_part_names_the_request_it_answers() -> None:
    """Method, URL and body read as from any response, the request built from what the part was sent as."""
    response = built_response(
        "PATCH", URL, 412, headers=[("Content-Type", "application/json")], content=b'{"error":{}}'
    )
    assert (response.status_code, response.json()) == (412, {"error": {}})
    assert response.request.method == "PATCH"
    assert response.request.url.path == "/api/data/v9.2/accounts(accountnumber='C-1')"
    assert response.request is response.request  # built once
    assert response.is_client_error


def test_a_part_takes_another_request() -> None:
    """Like any httpx response, a part's request can be set."""
    response = built_response("GET", URL, 200, headers=[], content=b"")
    other = httpx.Request("DELETE", "https://org.example.com/api/data/v9.2/accounts(1)")
    response.request = other
    assert response.request is other


def test_a_part_reads_as_its_body_every_way() -> None:
    """Content, text, JSON and a read all give the part's own bytes, and its headers are its own."""
    body = '{"name":"Contoso é"}'.encode()
    response = built_response(
        "GET", URL, 200, headers=[("Content-Type", "application/json; charset=utf-8")], content=body
    )
    assert response.content == body
    assert response.text == '{"name":"Contoso é"}'
    assert response.json() == {"name": "Contoso é"}
    assert response.read() == body
    assert b"".join(response.iter_bytes()) == body
    assert response.headers["content-type"] == "application/json; charset=utf-8"


def test_a_part_can_be_iterated_and_read_in_any_order_as_often_as_wanted() -> None:
    """As a response built with ``content=``: iterating never uses the body up, and reads follow."""
    body = b'{"value":[1,2,3]}'
    response = built_response("GET", URL, 200, headers=[], content=body)
    assert b"".join(response.iter_bytes()) == body
    assert b"".join(response.iter_bytes()) == body
    assert "".join(response.iter_text()) == body.decode()
    assert response.read() == body


@pytest.mark.asyncio
async def test_a_part_reads_asynchronously_too() -> None:
    """An async caller reads the part's body as a sync one does."""
    body = b'{"value":[]}'
    response = built_response("GET", URL, 200, headers=[], content=body)
    assert b"".join([chunk async for chunk in response.aiter_bytes()]) == body
    assert await response.aread() == body
