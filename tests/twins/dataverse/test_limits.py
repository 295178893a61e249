"""Service protection limits: 429, Retry-After and the documented codes, per user.

See https://learn.microsoft.com/power-apps/developer/data-platform/api-limits
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from dualbus.sandbox.dataverse import DataverseApiError, ServiceProtectionLimits
from dualbus.sandbox.dataverse.limits import ServiceProtection
from tests.twins.dataverse.support import client_for, part_statuses, post_batch, start


def _sdk_code(hex_code: str) -> int:
    """The SDK's signed error code for the Web API's hexadecimal one."""
    return int(hex_code, 16) - (1 << 32)


def test_request_count_limit_answers_429_with_retry_after() -> None:
    """Past the number of requests in the window, the user gets 429, Retry-After and -2147015902."""
    with start(limits=ServiceProtectionLimits(max_requests=3)) as twin, client_for(twin) as client:
        statuses = [client.get("accounts").status_code for _ in range(3)]
        refused = client.get("accounts")
    assert statuses == [200, 200, 200]
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 300
    error = refused.json()["error"]
    assert _sdk_code(error["code"]) == -2147015902
    assert "Number of requests exceeded the limit of 3" in error["message"]


def test_limits_are_per_user() -> None:
    """One user's exhausted limit does not throttle another user."""
    with (
        start(limits=ServiceProtectionLimits(max_requests=1)) as twin,
        client_for(twin, "dualbus") as first,
        client_for(twin, "maker") as second,
    ):
        first.get("accounts")
        assert first.get("accounts").status_code == 429
        assert second.get("accounts").status_code == 200


def test_batch_counts_as_one_request() -> None:
    """A batch of many operations counts once against the number of requests."""
    operations = [
        ("PATCH", f"/api/data/v9.2/transactioncurrencies(isocurrencycode='C{i:02}')", {}) for i in range(20)
    ]
    with start(limits=ServiceProtectionLimits(max_requests=2)) as twin, client_for(twin) as client:
        batch = post_batch(client, operations)
        assert part_statuses(batch) == [204] * 20
        assert client.get("transactioncurrencies").status_code == 200
        assert client.get("transactioncurrencies").status_code == 429


def test_execution_time_limit_answers_429() -> None:
    """Once the combined execution time in the window passes the limit, the user gets -2147015903."""
    with (
        start(limits=ServiceProtectionLimits(max_execution_seconds=1e-9)) as twin,
        client_for(twin) as client,
    ):
        assert client.get("accounts").status_code == 200
        refused = client.get("accounts")
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert _sdk_code(refused.json()["error"]["code"]) == -2147015903


def test_concurrency_limit_refuses_the_request_over_it() -> None:
    """With the concurrent-request limit reached, one more request is refused at once with -2147015898."""
    protection = ServiceProtection(ServiceProtectionLimits(max_concurrent=2), clock=lambda: 0.0)
    protection.admit("u")
    protection.admit("u")
    with pytest.raises(DataverseApiError) as refused:
        protection.admit("u")
    assert refused.value.status == 429
    assert _sdk_code(refused.value.code) == -2147015898
    assert refused.value.headers["Retry-After"] == "1"
    protection.release("u", 0.01)
    protection.admit("u")  # one finished: room again


def test_concurrent_request_over_the_limit_is_refused_over_http() -> None:
    """While one request is still in flight, a second one over a limit of one gets 429 with -2147015898."""
    release = threading.Event()

    def slow_body() -> Iterator[bytes]:
        yield b'{"currencyname": '
        release.wait(timeout=10)  # the server is waiting for the rest of this body: the request is in flight
        yield b'"Euro"}'

    with (
        start(limits=ServiceProtectionLimits(max_concurrent=1)) as twin,
        client_for(twin) as client,
        ThreadPoolExecutor(max_workers=1) as pool,
    ):
        slow = pool.submit(
            client.patch,
            "transactioncurrencies(isocurrencycode='EUR')",
            content=slow_body(),
            headers={"Content-Type": "application/json"},
        )
        refused = _first_refusal(client)
        release.set()
        finished = slow.result(timeout=10)
    assert refused.status_code == 429
    assert _sdk_code(refused.json()["error"]["code"]) == -2147015898
    assert refused.headers["Retry-After"] == "1"
    assert finished.status_code == 204


def _first_refusal(client: httpx.Client) -> httpx.Response:
    """Poll until the slow request has been admitted and a new one is refused (bounded to five seconds)."""
    deadline = time.monotonic() + 5
    response = client.get("accounts")
    while response.status_code != 429 and time.monotonic() < deadline:
        time.sleep(0.02)
        response = client.get("accounts")
    return response


def test_sliding_window_forgets_old_requests() -> None:
    """Requests older than the window no longer count, and Retry-After says when that happens."""
    now = [0.0]
    protection = ServiceProtection(
        ServiceProtectionLimits(max_requests=2, window_seconds=300), clock=lambda: now[0]
    )
    for moment in (0.0, 100.0):
        now[0] = moment
        protection.admit("u")
        protection.release("u", 0.0)
    now[0] = 150.0
    with pytest.raises(DataverseApiError) as refused:
        protection.admit("u")
    assert refused.value.headers["Retry-After"] == "150"
    now[0] = 301.0
    protection.admit("u")


def test_no_limits_means_no_throttling(client: httpx.Client) -> None:
    """With limits off (the benchmark setting) many requests pass."""
    assert {client.get("accounts").status_code for _ in range(50)} == {200}
