"""The OData client authenticates, refreshes tokens, and translates failures into dualbus's error tree."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest

from dualbus.shared.api import ApiClient, error_message, parse_retry_after
from dualbus.shared.errors import ThrottledError, TransientError

URL = "https://org.example"


class CountingTokens:
    """Gives t1, then a new token (t2, t3, ...) each time a refresh is asked for."""

    def __init__(self) -> None:
        self.issued = 0

    async def token(self, *, refresh: bool = False) -> str:
        """The current token, or the next one."""
        if refresh or not self.issued:
            self.issued += 1
        return f"t{self.issued}"


class FakeApi:
    """Answers API requests with scripted statuses, recording the tokens it saw."""

    def __init__(self, statuses: list[int], headers: dict[str, str] | None = None) -> None:
        self.statuses = statuses
        self.headers = headers or {}
        self.authorizations: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.authorizations.append(request.headers["Authorization"])
        status = self.statuses.pop(0)
        body = (
            {"error": {"code": "0x80072322", "message": "Number of requests exceeded"}}
            if status >= 400
            else {}
        )
        return httpx.Response(status, json=body, headers=self.headers)


def _client(api: FakeApi) -> ApiClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(api))
    return ApiClient(URL, CountingTokens(), http)


@pytest.mark.asyncio
async def test_requests_reuse_the_token_until_refused() -> None:
    """Without a 401, requests carry the provider's current token."""
    api = FakeApi([200, 200])
    client = _client(api)
    await client.request("GET", "/api/data/v9.2/accounts")
    await client.request("GET", "/api/data/v9.2/accounts")
    assert api.authorizations == ["Bearer t1", "Bearer t1"]


@pytest.mark.asyncio
async def test_a_second_401_is_transient() -> None:
    """A 401 with a fresh token too waits for an operator (TransientError), after exactly one refresh."""
    api = FakeApi([401, 401])
    with pytest.raises(TransientError, match="even with a fresh token"):
        await _client(api).request("GET", "/x")
    assert api.authorizations == ["Bearer t1", "Bearer t2"]


@pytest.mark.asyncio
async def test_401_refreshes_the_token_once() -> None:
    """A 401 fetches a fresh token and retries the request once."""
    api = FakeApi([401, 200])
    response = await _client(api).request("GET", "/x")
    assert response.status_code == 200
    assert api.authorizations == ["Bearer t1", "Bearer t2"]


@pytest.mark.asyncio
async def test_429_is_throttled_with_retry_after() -> None:
    """A 429 becomes ThrottledError carrying the server's Retry-After and its error text."""
    api = FakeApi([429], headers={"Retry-After": "7"})
    with pytest.raises(ThrottledError, match="Number of requests exceeded") as caught:
        await _client(api).request("POST", "/x", json={"a": 1})
    assert caught.value.retry_after == 7.0


@pytest.mark.asyncio
async def test_5xx_is_transient() -> None:
    """A server error is transient."""
    with pytest.raises(TransientError, match="503"):
        await _client(FakeApi([503])).request("GET", "/x")


@pytest.mark.asyncio
async def test_4xx_is_returned_to_the_caller() -> None:
    """A 412 or 404 is the caller's to interpret, not an exception."""
    response = await _client(FakeApi([412])).request("PATCH", "/x", json={})
    assert response.status_code == 412


@pytest.mark.asyncio
async def test_connection_error_is_transient_and_hides_nothing_secret() -> None:
    """A connection failure is transient and its message carries no credential."""

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    http = httpx.AsyncClient(transport=httpx.MockTransport(refuse))
    client = ApiClient(URL, CountingTokens(), http)
    with pytest.raises(TransientError, match="ConnectError") as caught:
        await client.request("GET", "/x")
    assert "t1" not in str(caught.value)


def test_retry_after_parses_seconds_and_dates() -> None:
    """Retry-After may be seconds or an HTTP date; garbage reads as absent."""
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    parsed = parse_retry_after(later)
    assert parsed is not None
    assert 25 <= parsed <= 31


@pytest.mark.parametrize("value", ["0", "-5", "nan", "past"])
def test_a_retry_after_asking_for_no_wait_is_taken_as_none(value: str) -> None:
    """0, a negative number or a date already past would make every retry go at once: the retry policy's
    own backoff applies instead."""
    if value == "past":  # made here, not in the parameters: test ids must be the same in every worker
        value = format_datetime(datetime.now(UTC) - timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(value) is None


def test_error_message_reads_odata_errors() -> None:
    """The OData error body's code and message are what an operator sees."""
    response = httpx.Response(400, json={"error": {"code": "0x80040217", "message": "Row not found"}})
    assert error_message(response) == "0x80040217: Row not found"
    assert error_message(httpx.Response(502, text="<html>")) == "HTTP 502 Bad Gateway"


FIXTURES = Path(__file__).parent / "fixtures"


def test_error_message_shows_what_fo_refused_not_its_generic_message() -> None:
    """F&O's real write refusal reads as its Infolog lines; Dataverse's documented error as its message."""
    fo = httpx.Response(400, content=(FIXTURES / "fo-write-failed.json").read_bytes())
    assert error_message(fo).startswith("Write failed for table row of type 'CustCustomerV3Entity'. Infolog:")
    assert "is not found in the related table 'Customer groups'" in error_message(fo)
    dataverse = httpx.Response(404, content=(FIXTURES / "dataverse-not-found.json").read_bytes())
    assert error_message(dataverse) == (
        "account With Id = 00000000-0000-0000-0000-000000000001 Does Not Exist"
    )
