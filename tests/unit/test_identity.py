"""The sandbox identity provider issues and checks tokens as Entra ID's client-credentials flow does."""

from __future__ import annotations

import pytest

from dualbus.sandbox.errors import SandboxAuthError
from dualbus.sandbox.identity import TokenIssuer, token_url, user_id_for


@pytest.fixture
def issuer() -> TokenIssuer:
    return TokenIssuer(signing_key="k" * 32, clients={"app": "secret"})


def test_issued_token_verifies_for_its_audience(issuer: TokenIssuer) -> None:
    """A token issued for a scope verifies for that scope's resource and names the calling app."""
    body = issuer.issue(client_id="app", client_secret="secret", scope="https://org.crm/.default")
    caller = issuer.verify(body["access_token"], audience="https://org.crm")
    assert body["token_type"] == "Bearer"
    assert caller.client_id == "app"
    assert caller.user_id == user_id_for("app")


def test_wrong_secret_is_refused(issuer: TokenIssuer) -> None:
    """A wrong client secret gets no token."""
    with pytest.raises(SandboxAuthError, match="invalid client secret"):
        issuer.issue(client_id="app", client_secret="nope", scope="https://org.crm/.default")


def test_token_for_another_audience_is_refused(issuer: TokenIssuer) -> None:
    """A token for one resource does not open another."""
    body = issuer.issue(client_id="app", client_secret="secret", scope="https://fo/.default")
    with pytest.raises(SandboxAuthError, match="audience"):
        issuer.verify(body["access_token"], audience="https://org.crm")


def test_expired_token_is_refused() -> None:
    """A token past its expiry is refused."""
    issuer = TokenIssuer(signing_key="k" * 32, clients={"app": "s"}, lifetime_seconds=-10)
    body = issuer.issue(client_id="app", client_secret="s", scope="https://org.crm/.default")
    with pytest.raises(SandboxAuthError, match="expired"):
        issuer.verify(body["access_token"], audience="https://org.crm")


def test_token_url_follows_the_identity_platform_path() -> None:
    """A twin's token endpoint sits where Entra ID's v2 endpoint does, below the tenant."""
    assert token_url("http://127.0.0.1:8080/", "sandbox") == "http://127.0.0.1:8080/sandbox/oauth2/v2.0/token"


def test_the_response_has_the_v2_fields_and_tokens_are_unique(issuer: TokenIssuer) -> None:
    """token_type, expires_in, ext_expires_in, access_token; two tokens differ (their uti claim)."""
    first = issuer.issue(client_id="app", client_secret="secret", scope="https://org.crm/.default")
    second = issuer.issue(client_id="app", client_secret="secret", scope="https://org.crm/.default")
    assert set(first) == {"token_type", "expires_in", "ext_expires_in", "access_token"}
    assert first["access_token"] != second["access_token"]


def test_a_federated_assertion_needs_the_registered_subject() -> None:
    """Workload identity: the registered service account's token buys one; another subject's does not."""
    issuer = TokenIssuer(signing_key="k" * 32, clients={}, federated={"app": "system:serviceaccount:ns:sa"})
    good = issuer.service_account_token("system:serviceaccount:ns:sa")
    body = issuer.issue_for_assertion(client_id="app", assertion=good, scope="https://org.crm/.default")
    assert issuer.verify(body["access_token"], audience="https://org.crm").client_id == "app"
    other = issuer.service_account_token("system:serviceaccount:ns:other")
    with pytest.raises(SandboxAuthError, match="AADSTS70021"):
        issuer.issue_for_assertion(client_id="app", assertion=other, scope="https://org.crm/.default")
