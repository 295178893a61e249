"""Who may call the twin and how often: bearer tokens for the right audience, priority-based throttling.

Throttled OData requests get 429 and a Retry-After in seconds:
https://learn.microsoft.com/dynamics365/fin-ops-core/dev-itpro/data-entities/priority-based-throttling
https://learn.microsoft.com/dynamics365/fin-ops-core/dev-itpro/data-entities/service-protection-api-limits
"""

from __future__ import annotations

import httpx
import pytest

from dualbus.sandbox.fo import FoHandle, Priority, ThrottlingConfig, start_fo
from dualbus.sandbox.fo.errors import TooManyRequestsError
from dualbus.sandbox.fo.throttling import Throttle


def test_no_token_is_401(fo: FoHandle) -> None:
    """A request without a bearer token is refused with 401 and a WWW-Authenticate challenge."""
    response = httpx.get(fo.url + "/data/CustomersV3")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_wrong_audience_is_401(fo: FoHandle) -> None:
    """A valid token for another resource does not open the F&O twin."""
    body = fo.issuer.issue(
        client_id="dualbus", client_secret="dualbus-secret", scope="https://org.crm/.default"
    )
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    assert httpx.get(fo.url + "/data/CustomersV3", headers=headers).status_code == 401


def test_token_endpoint_issues_usable_tokens(fo: FoHandle) -> None:
    """A client-credentials grant at the twin's token URL yields a token that the twin accepts."""
    form = {
        "grant_type": "client_credentials",
        "client_id": "dualbus",
        "client_secret": "dualbus-secret",
        "scope": fo.scope,
    }
    token = httpx.post(fo.token_url, data=form).json()["access_token"]
    response = httpx.get(fo.url + "/data/CustomersV3", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200


def test_throttling_is_off_by_default(client: httpx.Client) -> None:
    """Without throttling configured, a burst of requests is all answered 200."""
    assert {client.get("/data/Currencies").status_code for _ in range(30)} == {200}


def test_low_priority_is_throttled_first_with_retry_after() -> None:
    """Over the threshold a Low priority client gets 429 with Retry-After while a High one still passes."""
    config = ThrottlingConfig(
        enabled=True,
        capacity=10,
        window_seconds=60,
        priorities={"workload": Priority.LOW, "dualbus": Priority.HIGH},
    )
    with start_fo(throttling=config) as fo, fo.client("workload") as low, fo.client("dualbus") as high:
        statuses = [low.get("/data/Currencies").status_code for _ in range(6)]
        throttled = low.get("/data/Currencies")
        assert statuses == [200] * 5 + [429]
        assert throttled.status_code == 429
        assert 1 <= int(throttled.headers["Retry-After"]) <= 60
        assert high.get("/data/Currencies").status_code == 200


def test_waiting_retry_after_seconds_admits_again() -> None:
    """After the Retry-After interval the sliding window has room again (checked on a fake clock)."""
    now = [1000.0]
    throttle = Throttle(ThrottlingConfig(enabled=True, capacity=4, window_seconds=10), clock=lambda: now[0])
    for step in range(3):
        now[0] += step
        throttle.admit("app")  # Medium priority: 3 of the 4 slots
    with pytest.raises(TooManyRequestsError) as refused:
        throttle.admit("app")
    now[0] += refused.value.retry_after
    throttle.admit("app")
    assert refused.value.retry_after == 7  # the first request, at t=1000, leaves the window at t=1010
