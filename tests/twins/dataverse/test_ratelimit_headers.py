"""The ``x-ms-ratelimit-*`` headers: the requests and execution time a user has left, on every API response.

See https://learn.microsoft.com/power-apps/developer/data-platform/api-limits#http-response-headers
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import httpx

from dualbus.sandbox.dataverse import ServiceProtectionLimits
from dualbus.sandbox.dataverse.limits import RemainingBudget, ServiceProtection
from dualbus.sandbox.dataverse.ratelimit_headers import ratelimit_headers
from tests.twins.dataverse.support import Operation, client_for, part_statuses, post_batch, start

REQUESTS = "x-ms-ratelimit-burst-remaining-xrm-requests"
TIME = "x-ms-ratelimit-time-remaining-xrm-requests"
# Seconds grouped by thousands, two decimals, as the documented WhoAmI response shows "1,200.00".
_SECONDS = re.compile(r"\d{1,3}(,\d{3})*\.\d{2}")


def _requests_left(response: httpx.Response) -> int:
    return int(response.headers[REQUESTS])


def _seconds_left(response: httpx.Response) -> float:
    value = response.headers[TIME]
    assert _SECONDS.fullmatch(value), value
    return float(value.replace(",", ""))


def test_requests_left_count_down_with_each_request() -> None:
    """Each response tells how many requests remain, the one being answered already counted."""
    with start(limits=ServiceProtectionLimits(max_requests=5)) as twin, client_for(twin) as client:
        responses = [client.get("accounts") for _ in range(3)]
    assert [response.status_code for response in responses] == [200, 200, 200]
    assert [_requests_left(response) for response in responses] == [4, 3, 2]


def test_first_response_reports_the_documented_defaults() -> None:
    """With the default limits a first request reads 5999 requests and 1,200.00 seconds, as documented."""
    with start() as twin, client_for(twin) as client:
        response = client.get("accounts")
    assert response.headers[REQUESTS] == "5999"
    assert response.headers[TIME] == "1,200.00"


def test_error_responses_report_the_limits_too() -> None:
    """A refusal other than throttling still carries both headers, and still counts as a request."""
    with start(limits=ServiceProtectionLimits(max_requests=5)) as twin, client_for(twin) as client:
        missing = client.get("nosuchentities")
    assert missing.status_code == 404
    assert _requests_left(missing) == 4
    assert _seconds_left(missing) == 1200.0


def test_time_left_shrinks_by_the_execution_time_of_earlier_requests() -> None:
    """A request executing over 0.2 s leaves at most 1,199.80 s to the next; its own response reads 1,200.00.

    The client waits 0.3 s inside the body: the server's clock starts only once it has the headers, so it
    measures a little under what the client waited, and on a loaded machine tens of milliseconds under.
    """

    def slow_body() -> Iterator[bytes]:
        yield b'{"currencyname": '
        time.sleep(0.3)  # the server waits for the rest of the body: the request is executing meanwhile
        yield b'"Euro"}'

    with start() as twin, client_for(twin) as client:
        slow = client.patch(
            "transactioncurrencies(isocurrencycode='EUR')",
            content=slow_body(),
            headers={"Content-Type": "application/json"},
        )
        after = client.get("transactioncurrencies")
    assert slow.status_code == 204
    assert _seconds_left(slow) == 1200.0
    assert _seconds_left(after) <= 1199.8
    assert _requests_left(after) == _requests_left(slow) - 1


def test_a_batch_spends_one_request() -> None:
    """A batch of many operations lowers the requests left by one, as it counts once against the limit."""
    operations: list[Operation] = [
        ("PATCH", f"/api/data/v9.2/transactioncurrencies(isocurrencycode='C{i:02}')", {}) for i in range(10)
    ]
    with start(limits=ServiceProtectionLimits(max_requests=5)) as twin, client_for(twin) as client:
        batch = post_batch(client, operations)
        after = client.get("transactioncurrencies")
    assert part_statuses(batch) == [204] * 10
    assert (_requests_left(batch), _requests_left(after)) == (4, 3)


def test_request_count_429_reports_no_requests_left() -> None:
    """Once the requests are spent the 429 says 0 requests left, next to its Retry-After."""
    with start(limits=ServiceProtectionLimits(max_requests=2)) as twin, client_for(twin) as client:
        passed = [client.get("accounts") for _ in range(2)]
        refused = client.get("accounts")
    assert [_requests_left(response) for response in passed] == [1, 0]
    assert refused.status_code == 429
    assert "Retry-After" in refused.headers
    assert _requests_left(refused) == 0
    assert _seconds_left(refused) > 0


def test_execution_time_429_reports_no_time_left() -> None:
    """Once the execution time is spent the 429 says 0.00 seconds left; the refused request is not counted."""
    with (
        start(limits=ServiceProtectionLimits(max_requests=10, max_execution_seconds=1e-6)) as twin,
        client_for(twin) as client,
    ):
        passed = client.get("accounts")
        refused = client.get("accounts")
    assert passed.status_code == 200
    assert refused.status_code == 429
    assert refused.headers[TIME] == "0.00"
    assert _requests_left(refused) == 9


def test_each_user_has_their_own_remaining_limits() -> None:
    """One user's spending does not lower what another user is told is left."""
    with (
        start(limits=ServiceProtectionLimits(max_requests=5)) as twin,
        client_for(twin, "dualbus") as first,
        client_for(twin, "maker") as second,
    ):
        for _ in range(3):
            first.get("accounts")
        assert _requests_left(second.get("accounts")) == 4


def test_no_limits_means_no_ratelimit_headers(client: httpx.Client) -> None:
    """With service protection off there is no limit to report, so neither header is sent."""
    response = client.get("accounts")
    assert response.status_code == 200
    assert REQUESTS not in response.headers
    assert TIME not in response.headers


def test_remaining_budget_follows_the_sliding_window() -> None:
    """What is left grows back as requests and their time leave the window, and never goes below 0."""
    now = [0.0]
    protection = ServiceProtection(
        ServiceProtectionLimits(max_requests=3, max_execution_seconds=10.0, window_seconds=300),
        clock=lambda: now[0],
    )
    protection.admit("u")
    protection.release("u", 4.0)
    now[0] = 100.0
    protection.admit("u")
    protection.release("u", 7.5)  # 11.5 s spent: past the 10 s limit
    assert protection.remaining("u") == RemainingBudget(requests=1, execution_seconds=0.0)
    now[0] = 301.0  # the first request has left the window
    assert protection.remaining("u") == RemainingBudget(requests=2, execution_seconds=2.5)


def test_headers_are_formatted_as_the_service_formats_them() -> None:
    """Whole requests; seconds grouped by thousands and rounded to two decimals."""
    assert ratelimit_headers(RemainingBudget(requests=5993, execution_seconds=1199.456)) == {
        REQUESTS: "5993",
        TIME: "1,199.46",
    }
