"""Tokens come from azure-identity over real HTTPS on loopback; every way it fails is a TransientError.

The sandbox's token endpoint (served with a throw-away CA) stands in for Entra ID; a scripted endpoint
answers what Entra ID should not (a 200 without a token, HTML, a 500). Nothing in azure-identity is patched.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dualbus.consumers import Action, verdict
from dualbus.sandbox.dataverse.server import RunningDataverse, start_dataverse
from dualbus.sandbox.http_server import serve_in_thread
from dualbus.sandbox.identity import (
    MANAGED_IDENTITY_ROUTE,
    TOKEN_ROUTE,
    IdentityServer,
    TokenIssuer,
    serve_identity,
)
from dualbus.sandbox.tls import loopback_certificate
from dualbus.shared.api import ApiClient
from dualbus.shared.errors import ConfigError, TransientError
from dualbus.shared.identity import build_credential, open_tokens
from dualbus.shared.settings import ApiSettings, Credential
from tests.twin_settings import api_settings

SECRET = "pipeline-secret-value"
CLIENTS = {"dualbus": SECRET}
SUBJECT = "system:serviceaccount:dualbus:consumer"
WHO_AM_I = "api/data/v9.2/WhoAmI"


@pytest.fixture(scope="module")
def twin() -> Iterator[RunningDataverse]:
    with start_dataverse(clients=CLIENTS, limits=None) as running:
        yield running


def _settings(twin: RunningDataverse, **changes: object) -> ApiSettings:
    return api_settings(twin, client_id="dualbus", secret=SECRET).model_copy(update=changes)


@pytest.mark.asyncio
async def test_a_token_comes_from_the_sandbox_over_https(twin: RunningDataverse) -> None:
    """ClientSecretCredential gets a token from the twin's HTTPS authority, trusting the sandbox CA."""
    async with open_tokens(_settings(twin)) as tokens:
        token = await tokens.token()
    caller = twin.issuer.verify(token, audience=twin.audience)
    assert caller.client_id == "dualbus"


@pytest.mark.asyncio
async def test_tokens_are_cached_and_refresh_gets_a_new_one(twin: RunningDataverse) -> None:
    """The cached token is reused until a refresh is asked for; then a different, valid one comes."""
    async with open_tokens(_settings(twin)) as tokens:
        first = await tokens.token()
        assert await tokens.token() == first
        fresh = await tokens.token(refresh=True)
    assert fresh != first
    assert twin.issuer.verify(fresh, audience=twin.audience).client_id == "dualbus"


@pytest.mark.asyncio
async def test_a_401_is_answered_with_a_new_token() -> None:
    """When the API stops accepting the cached token (its signing key rotated), one refresh fixes it."""
    with start_dataverse(clients=CLIENTS, limits=None) as twin:
        settings = _settings(twin)
        async with httpx.AsyncClient() as http, open_tokens(settings) as tokens:
            api = ApiClient(twin.url, tokens, http)
            assert (await api.request("GET", WHO_AM_I)).status_code == 200
            twin.issuer.signing_key = "rotated-" + twin.issuer.signing_key
            response = await api.request("GET", WHO_AM_I)
    assert response.status_code == 200


@pytest.mark.asyncio
async def test_a_wrong_secret_waits_and_never_shows_the_secret(twin: RunningDataverse) -> None:
    """Refused credentials are transient (an operator fixes them); the message names why, not the secret."""
    wrong = "wrong-secret-value-123"
    async with open_tokens(_settings(twin, client_secret=SecretStr(wrong))) as tokens:
        with pytest.raises(TransientError, match="AADSTS7000215") as caught:
            await tokens.token()
    message = str(caught.value)
    assert wrong not in message
    assert SECRET not in message
    assert "\n" not in message


@pytest.mark.asyncio
async def test_an_untrusted_certificate_is_refused(twin: RunningDataverse) -> None:
    """Without the sandbox CA the certificate does not verify: verification is on, not switched off."""
    async with open_tokens(_settings(twin, ca_bundle=None)) as tokens:
        with pytest.raises(TransientError, match=r"gave no token .*CERTIFICATE_VERIFY_FAILED"):
            await tokens.token()


@pytest.mark.asyncio
async def test_an_unreachable_endpoint_is_transient(twin: RunningDataverse) -> None:
    """Nothing listening at the authority: a TransientError, at once (the caller's policy retries)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    async with open_tokens(_settings(twin, authority_host=f"https://127.0.0.1:{closed}")) as tokens:
        with pytest.raises(TransientError, match="ServiceRequestError"):
            await tokens.token()


def _refusal(error: str, description: str) -> dict[str, str]:
    # The v2 endpoint's error body: https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow
    return {"error": error, "error_description": description}


def _scripted(answer: Response) -> Starlette:
    async def endpoint(_: Request) -> Response:
        return answer

    return Starlette(routes=[Route(TOKEN_ROUTE, endpoint, methods=["POST"])])


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (JSONResponse({"token_type": "Bearer", "expires_in": 3600}), "without a usable token"),
        (JSONResponse({"access_token": "t", "expires_in": "soon"}), "without a usable token"),
        (JSONResponse(["not", "an", "object"]), "gave no token .*Unexpected response"),
        (Response("<html>sign in</html>", media_type="text/html"), "gave no token .*Unexpected response"),
        (Response("{not json", media_type="application/json"), "gave no token .*DecodeError"),
        (JSONResponse({}), "gave no token .*No response content"),
        (JSONResponse(_refusal("invalid_request", "AADSTS900144"), 400), "AADSTS900144"),
        (JSONResponse(_refusal("invalid_client", "AADSTS7000215"), 401), "AADSTS7000215"),
        (JSONResponse({"error": "temporarily_unavailable"}, 503), "gave no token .*temporarily_unavailable"),
    ],
    ids=["no-token", "bad-expiry", "a-list", "html", "broken-json", "empty", "400", "401", "503"],
)
@pytest.mark.asyncio
async def test_every_bad_answer_is_transient(answer: Response, expected: str, twin: RunningDataverse) -> None:
    """A 200 that is not a token, a refusal or a server error: all TransientError, one line, no secret."""
    tls = loopback_certificate()
    try:
        with serve_in_thread(_scripted(answer), tls=tls) as server:
            settings = _settings(twin, authority_host=server.url, ca_bundle=tls.ca_bundle)
            async with open_tokens(settings) as tokens:
                with pytest.raises(TransientError, match=expected) as caught:
                    await tokens.token()
    finally:
        tls.remove()
    assert SECRET not in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.fixture
def federation() -> Iterator[tuple[TokenIssuer, IdentityServer]]:
    issuer = TokenIssuer(signing_key="k" * 32, clients={}, federated={"dualbus": SUBJECT})
    with serve_identity(issuer) as server:
        yield issuer, server


def _workload(server: IdentityServer, token_file: Path) -> ApiSettings:
    return ApiSettings(
        url="https://org.example",
        credential=Credential.WORKLOAD_IDENTITY,
        client_id="dualbus",
        tenant_id="sandbox",
        authority_host=server.authority,
        ca_bundle=server.ca_bundle,
        token_file=token_file,
    )


@pytest.mark.asyncio
async def test_workload_identity_exchanges_the_service_account_token(
    federation: tuple[TokenIssuer, IdentityServer], tmp_path: Path
) -> None:
    """The pod's projected token, presented as a client assertion, buys an access token for the API."""
    issuer, server = federation
    token_file = tmp_path / "azure-identity-token"
    token_file.write_text(issuer.service_account_token(SUBJECT))
    async with open_tokens(_workload(server, token_file)) as tokens:
        token = await tokens.token()
    assert issuer.verify(token, audience="https://org.example").client_id == "dualbus"


@pytest.mark.asyncio
async def test_workload_identity_of_another_service_account_is_refused(
    federation: tuple[TokenIssuer, IdentityServer], tmp_path: Path
) -> None:
    """A service account the application has no federated credential for gets no token (and waits)."""
    issuer, server = federation
    token_file = tmp_path / "azure-identity-token"
    token_file.write_text(issuer.service_account_token("system:serviceaccount:other:app"))
    async with open_tokens(_workload(server, token_file)) as tokens:
        with pytest.raises(TransientError, match="AADSTS70021"):
            await tokens.token()


@pytest.mark.asyncio
async def test_workload_identity_whose_token_file_is_missing_waits_as_any_credential_problem(
    federation: tuple[TokenIssuer, IdentityServer], tmp_path: Path
) -> None:
    """A token file that is not there (a wrong path, a volume not mounted) is a TransientError naming the
    file's problem, not an OSError that dead-letters the work as unexpected or ends the producer."""
    _issuer, server = federation
    async with open_tokens(_workload(server, tmp_path / "not-mounted")) as tokens:
        with pytest.raises(TransientError, match="FileNotFoundError"):
            await tokens.token()


def test_workload_identity_without_a_token_file_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """No token file in the settings nor in AZURE_FEDERATED_TOKEN_FILE: the credential cannot be built."""
    monkeypatch.delenv("AZURE_FEDERATED_TOKEN_FILE", raising=False)
    settings = ApiSettings(
        url="https://org.example", credential=Credential.WORKLOAD_IDENTITY, client_id="a", tenant_id="t"
    )
    with pytest.raises(ConfigError, match="workload_identity"):
        build_credential(settings)


@pytest.fixture
def host() -> Iterator[tuple[TokenIssuer, IdentityServer]]:
    issuer = TokenIssuer(signing_key="k" * 32, clients={}, managed_identities=("system-id", "user-id"))
    with serve_identity(issuer) as server:
        yield issuer, server


def _managed(server: IdentityServer, monkeypatch: pytest.MonkeyPatch, client_id: str | None) -> ApiSettings:
    # What App Service and Container Apps put in a container's environment.
    monkeypatch.setenv("IDENTITY_ENDPOINT", server.managed_identity_endpoint)
    monkeypatch.setenv("IDENTITY_HEADER", server.identity_header)
    return ApiSettings(
        url="https://org.example",
        credential=Credential.MANAGED_IDENTITY,
        client_id=client_id,
        ca_bundle=server.ca_bundle,
    )


@pytest.mark.parametrize(("client_id", "expected"), [(None, "system-id"), ("user-id", "user-id")])
@pytest.mark.asyncio
async def test_managed_identity_signs_in_as_the_hosts_identity(
    host: tuple[TokenIssuer, IdentityServer],
    monkeypatch: pytest.MonkeyPatch,
    client_id: str | None,
    expected: str,
) -> None:
    """No secret: the system-assigned identity, or the user-assigned one that client_id names."""
    issuer, server = host
    async with open_tokens(_managed(server, monkeypatch, client_id)) as tokens:
        token = await tokens.token()
    assert issuer.verify(token, audience="https://org.example").client_id == expected


@pytest.mark.asyncio
async def test_a_managed_identity_the_host_lacks_gets_no_token(
    host: tuple[TokenIssuer, IdentityServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user-assigned identity not assigned to the host: TransientError (an operator assigns it)."""
    _, server = host
    async with open_tokens(_managed(server, monkeypatch, "unassigned-id")) as tokens:
        with pytest.raises(TransientError, match=r"managed identity endpoint .*unassigned-id is assigned"):
            await tokens.token()


@pytest.mark.parametrize(
    ("credential", "expected"),
    [
        (Credential.CLIENT_SECRET, "ClientSecretCredential"),
        (Credential.MANAGED_IDENTITY, "ManagedIdentityCredential"),
        (Credential.DEFAULT, "DefaultAzureCredential"),
    ],
)
@pytest.mark.asyncio
async def test_the_setting_chooses_the_credential(
    credential: Credential, expected: str, tmp_path: Path
) -> None:
    """Each kind builds with the authority and CA options (nothing is requested until a token is)."""
    settings = ApiSettings(
        url="https://org.example",
        credential=credential,
        tenant_id="contoso",
        client_id="app",
        client_secret=SecretStr(SECRET) if credential is Credential.CLIENT_SECRET else None,
        authority_host="https://login.microsoftonline.us",
        ca_bundle=tmp_path / "ca.pem",
    )
    built = build_credential(settings)
    try:
        assert type(built).__name__ == expected
    finally:
        await built.close()


@pytest.mark.asyncio
async def test_cached_tokens_log_nothing(twin: RunningDataverse, caplog: pytest.LogCaptureFixture) -> None:
    """At INFO, taking a cached token writes no line (azure-identity would write one per API request)."""
    async with open_tokens(_settings(twin)) as tokens:
        await tokens.token()
        caplog.clear()
        with caplog.at_level(logging.INFO):
            for _ in range(3):
                await tokens.token()
    assert [r for r in caplog.records if r.name.startswith("azure.identity")] == []


def _scripted_managed_identity(answer: Response) -> Starlette:
    async def endpoint(_: Request) -> Response:
        return answer

    return Starlette(routes=[Route(MANAGED_IDENTITY_ROUTE, endpoint, methods=["GET"])])


@pytest.mark.parametrize(
    "answer",
    [
        JSONResponse({"token_type": "Bearer"}),
        JSONResponse({"access_token": "t", "expires_on": "never"}),
        JSONResponse(["not", "an", "object"]),
        Response("<html>sign in</html>", media_type="text/html"),
        Response("{not json", media_type="application/json"),
    ],
    ids=["no-token", "bad-expiry", "a-list", "html", "broken-json"],
)
@pytest.mark.asyncio
async def test_a_managed_identity_endpoint_answering_200_without_a_token_is_transient(
    answer: Response, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The host's identity endpoint answering 200 with a body that is no token: TransientError too."""
    tls = loopback_certificate()
    try:
        with serve_in_thread(_scripted_managed_identity(answer), tls=tls) as server:
            monkeypatch.setenv("IDENTITY_ENDPOINT", server.url + MANAGED_IDENTITY_ROUTE)
            monkeypatch.setenv("IDENTITY_HEADER", "host-secret")
            settings = ApiSettings(
                url="https://org.example", credential=Credential.MANAGED_IDENTITY, ca_bundle=tls.ca_bundle
            )
            async with open_tokens(settings) as tokens:
                with pytest.raises(TransientError, match="managed identity endpoint") as caught:
                    await tokens.token()
    finally:
        tls.remove()
    assert "\n" not in str(caught.value)


@pytest.mark.asyncio
async def test_an_api_request_without_a_usable_token_waits(twin: RunningDataverse) -> None:
    """Through the API client the bad answer stays a TransientError: a consumer retries the message and,
    once its budget is spent, abandons it (it comes back) rather than dead-lettering it as unexpected."""
    tls = loopback_certificate()
    try:
        no_token = JSONResponse({"token_type": "Bearer", "expires_in": 3600})
        with serve_in_thread(_scripted(no_token), tls=tls) as server:
            settings = _settings(twin, authority_host=server.url, ca_bundle=tls.ca_bundle)
            async with httpx.AsyncClient() as http, open_tokens(settings) as tokens:
                api = ApiClient(twin.url, tokens, http)
                with pytest.raises(TransientError, match="without a usable token") as caught:
                    await api.request("GET", WHO_AM_I)
    finally:
        tls.remove()
    decided = verdict(caught.value)
    assert decided.action is Action.RETRY
    assert not decided.dead_letter_when_spent
