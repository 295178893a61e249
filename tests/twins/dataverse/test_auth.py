"""The Dataverse twin refuses calls without a valid bearer token for its own audience.

Web API 401s: https://learn.microsoft.com/power-apps/developer/data-platform/webapi/compose-http-requests-handle-errors
"""

from __future__ import annotations

import httpx

from dualbus.sandbox.dataverse import RunningDataverse
from dualbus.sandbox.identity import user_id_for
from tests.twins.dataverse.support import token_for


def test_request_without_token_is_refused(twin: RunningDataverse) -> None:
    """A Web API call with no Authorization header gets 401 and a WWW-Authenticate challenge."""
    response = httpx.get(twin.api_url + "accounts")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_token_for_another_audience_is_refused(twin: RunningDataverse) -> None:
    """A token issued for a different resource (e.g. F&O) does not open the Dataverse twin."""
    token = token_for(twin, "dualbus", scope="https://fo.sandbox.local/.default")
    response = httpx.get(twin.api_url + "accounts", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert "audience" in response.json()["error"]["message"]


def test_garbage_token_is_refused(twin: RunningDataverse) -> None:
    """A bearer value that is not a token signed by the sandbox issuer gets 401."""
    response = httpx.get(twin.api_url + "accounts", headers={"Authorization": "Bearer not-a-jwt"})
    assert response.status_code == 401


def test_token_endpoint_refuses_a_wrong_secret(twin: RunningDataverse) -> None:
    """The twin's client-credentials endpoint issues no token for a wrong secret."""
    response = httpx.post(
        twin.token_url,
        data={
            "grant_type": "client_credentials",
            "client_id": "dualbus",
            "client_secret": "wrong",
            "scope": twin.scope,
        },
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_valid_token_is_accepted(twin: RunningDataverse) -> None:
    """A token from the twin's own endpoint for its audience reads the API."""
    token = token_for(twin, "dualbus")
    response = httpx.get(twin.api_url + "accounts", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.json()["value"] == []


def test_who_am_i_names_the_token_user(twin: RunningDataverse) -> None:
    """WhoAmI returns the calling user's id: the value the twin writes into _modifiedby_value.

    See https://learn.microsoft.com/power-apps/developer/data-platform/webapi/reference/whoami
    """
    token = token_for(twin, "maker")
    response = httpx.get(twin.api_url + "WhoAmI", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.json()["UserId"] == user_id_for("maker")


def test_service_document_lists_the_tables(twin: RunningDataverse) -> None:
    """The API root lists the entity sets the twin serves."""
    token = token_for(twin, "dualbus")
    response = httpx.get(twin.api_url, headers={"Authorization": f"Bearer {token}"})
    names = {entry["name"] for entry in response.json()["value"]}
    assert {"accounts", "cdm_companies", "transactioncurrencies", "msdyn_vendors", "products"} <= names
