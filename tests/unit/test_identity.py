"""The sandbox identity provider issues and checks tokens as Entra ID's client-credentials flow does."""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace

import httpx
import jwt
import pytest
from starlette.applications import Starlette
from starlette.routing import Route

from dualbus.sandbox.errors import SandboxAuthError
from dualbus.sandbox.identity import TokenIssuer, managed_identity_endpoint, token_url, user_id_for
from dualbus.sandbox.workload.run import SandboxRun


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


def test_a_token_verified_before_is_refused_once_it_expires() -> None:
    """Verified tokens are remembered, but not past their expiry: the clock reaching ``exp`` refuses it."""
    issuer = TokenIssuer(signing_key="k" * 32, clients={"app": "s"}, lifetime_seconds=1)
    token = issuer.issue(client_id="app", client_secret="s", scope="https://org.crm/.default")["access_token"]
    assert issuer.verify(token, audience="https://org.crm").client_id == "app"
    assert issuer.verify(token, audience="https://org.crm").client_id == "app"
    time.sleep(max(0.0, jwt.decode(token, options={"verify_signature": False})["exp"] - time.time()) + 0.01)
    with pytest.raises(SandboxAuthError, match="expired"):
        issuer.verify(token, audience="https://org.crm")


def test_a_token_verified_for_its_audience_still_opens_no_other(issuer: TokenIssuer) -> None:
    """What is remembered is the token for one audience, not the token."""
    token = issuer.issue(client_id="app", client_secret="secret", scope="https://fo/.default")["access_token"]
    issuer.verify(token, audience="https://fo")
    with pytest.raises(SandboxAuthError, match="audience"):
        issuer.verify(token, audience="https://org.crm")
    with pytest.raises(SandboxAuthError, match="invalid"):
        issuer.verify(token[:-2] + "xx", audience="https://fo")


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


def test_a_secret_of_any_characters_is_refused_not_failed(issuer: TokenIssuer) -> None:
    """A wrong secret that is not ASCII is refused as any wrong secret is: compared as text, it raised
    TypeError, and the token endpoint answered 500."""
    with pytest.raises(SandboxAuthError, match="invalid client secret"):
        issuer.issue(client_id="app", client_secret="sécret", scope="https://org.crm/.default")


@pytest.mark.asyncio
async def test_a_managed_identity_header_of_any_characters_is_refused_with_401(issuer: TokenIssuer) -> None:
    """The managed-identity endpoint answers a wrong X-IDENTITY-HEADER 401, whatever its characters."""
    app = Starlette(routes=[Route("/msi/token", managed_identity_endpoint(issuer, "header-secret"))])
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://identity") as client:
        answer = await client.get("/msi/token", headers={"X-IDENTITY-HEADER": "h\xe9".encode("latin-1")})
    assert answer.status_code == 401
    assert answer.json()["error"] == "unauthorized_client"


def test_the_sandbox_info_file_is_the_owners_alone(tmp_path: Path) -> None:
    """It holds the clients' secrets: readable by its owner only, written under a name no one could have
    prepared (a link left at the old fixed name '<file>.partial' is not followed)."""
    victim = tmp_path / "victim.txt"
    victim.write_text("untouched")
    target = tmp_path / "sandbox.json"
    target.with_suffix(".partial").symlink_to(victim)
    run = SimpleNamespace(info=lambda: {"clients": {"workload": "workload-secret"}})
    SandboxRun.write_info(run, target)  # type: ignore[arg-type]
    assert target.stat().st_mode & 0o077 == 0
    assert json.loads(target.read_text()) == {"clients": {"workload": "workload-secret"}}
    assert victim.read_text() == "untouched"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sandbox.json", "sandbox.partial", "victim.txt"]
