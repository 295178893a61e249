"""A stand-in for Entra ID: an OAuth2 client-credentials token endpoint and bearer-token checks.

Tokens are JWTs with the claims the twins rely on (``aud``, ``appid``, ``oid``, ``exp``, and ``uti``, the
token's own id, so two tokens are never equal), signed with a sandbox key. The endpoint speaks the Microsoft
identity platform's v2 client-credentials shape, so the client that calls
``https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token`` (azure-identity) calls this one:
https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow for the request (a
secret, or a client assertion) and the response (``token_type``, ``expires_in``, ``ext_expires_in``,
``access_token``); https://learn.microsoft.com/entra/identity-platform/access-token-claims-reference for
the claims. azure-identity refuses an ``http://`` authority, so ``serve_identity`` serves the endpoint over
HTTPS with a sandbox CA; the twins also keep it on their own plain-HTTP port for scripts and curl.

Workload identity federation (AKS's workload identity): the pod presents a token its cluster signed (the
"service account token") as a client assertion; Entra ID accepts it when a federated credential of the
application names its issuer, subject and the audience ``api://AzureADTokenExchange``
(https://learn.microsoft.com/entra/workload-id/workload-identity-federation). ``TokenIssuer.federated``
holds those records and ``service_account_token`` makes such an assertion.

Managed identity as App Service and Container Apps offer it: ``GET {IDENTITY_ENDPOINT}?api-version=2019-08-01
&resource=...`` with the ``X-IDENTITY-HEADER`` secret, answered with ``access_token``, ``expires_on``,
``resource`` and ``token_type``
(https://learn.microsoft.com/azure/app-service/overview-managed-identity#rest-endpoint-reference).
``TokenIssuer.managed_identities`` lists the identities of the "host"; the first is its system-assigned one.
"""

from __future__ import annotations

import hmac
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from starlette.applications import Starlette
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from dualbus.sandbox.errors import SandboxAuthError, SandboxError
from dualbus.sandbox.handles import StopOnExit
from dualbus.sandbox.http_server import ServerHandle, serve_in_thread
from dualbus.sandbox.tls import TlsFiles, loopback_certificate

__all__ = [
    "MANAGED_IDENTITY_ROUTE",
    "TOKEN_ROUTE",
    "BearerAuthMiddleware",
    "Caller",
    "IdentityServer",
    "TokenIssuer",
    "managed_identity_endpoint",
    "serve_identity",
    "token_endpoint",
    "token_url",
    "user_id_for",
]

_ALGORITHM = "HS256"
# Verified tokens remembered at most (see TokenIssuer._verified).
_VERIFIED_KEPT = 1024
# Where a twin mounts ``token_endpoint``: the Microsoft identity platform's v2 path.
TOKEN_ROUTE = "/{tenant}/oauth2/v2.0/token"  # noqa: S105 - a URL path, not a secret
# Where ``serve_identity`` answers managed identity requests (what IDENTITY_ENDPOINT points at).
MANAGED_IDENTITY_ROUTE = "/msi/token"
_MANAGED_IDENTITY_API_VERSION = "2019-08-01"
_USER_NAMESPACE = uuid.UUID("6f1c2d4e-8a7b-4c1d-9e2f-3a4b5c6d7e8f")
# The client_assertion_type of a JWT client assertion (RFC 7523), as azure-identity sends it.
_JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# The audience Entra ID expects in a federated (workload identity) assertion.
FEDERATION_AUDIENCE = "api://AzureADTokenExchange"
# Stands in for a Kubernetes cluster's OIDC issuer URL, the issuer of its service account tokens.
SERVICE_ACCOUNT_ISSUER = "https://oidc.sandbox.dualbus.local/cluster"


def token_url(base_url: str, tenant: str) -> str:
    """The token endpoint of a twin served at ``base_url`` for ``tenant``."""
    return base_url.rstrip("/") + TOKEN_ROUTE.format(tenant=tenant)


def user_id_for(client_id: str) -> str:
    """The stable user id (a GUID) the twins record for an application's changes."""
    return str(uuid.uuid5(_USER_NAMESPACE, client_id))


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling a twin, read from a verified token."""

    client_id: str
    user_id: str
    audience: str


@dataclass(slots=True)
class TokenIssuer:
    """Issues and verifies sandbox tokens for registered client applications."""

    signing_key: str
    clients: Mapping[str, str]
    issuer: str = "https://sandbox.dualbus.local/tenant/v2.0"
    lifetime_seconds: int = 3600
    # Federated credentials: client id → the service account subject allowed to act as that application.
    federated: Mapping[str, str] = field(default_factory=dict)
    # Client ids of the host's managed identities (the first is the system-assigned one).
    managed_identities: tuple[str, ...] = ()
    _now: Callable[[], float] = field(default=time.time, repr=False)
    # Tokens already verified, by (token, audience) → who and when the token expires. A client sends its
    # token with every request for an hour; decoding and checking the signature each time took a tenth of
    # the twins' CPU at 200 changes/s.
    _verified: dict[tuple[str, str], tuple[Caller, float]] = field(default_factory=dict, repr=False)

    def issue(self, *, client_id: str, client_secret: str, scope: str) -> dict[str, Any]:
        """Return the token response for a client-credentials grant, or raise SandboxAuthError."""
        expected = self.clients.get(client_id)
        # As bytes: compare_digest refuses text that is not ASCII (TypeError, a 500), where a wrong secret
        # of any characters is a 401.
        if expected is None or not hmac.compare_digest(expected.encode(), client_secret.encode()):
            raise SandboxAuthError("AADSTS7000215: invalid client secret or unknown client")
        return self._token_response(client_id, scope)

    def issue_for_assertion(self, *, client_id: str, assertion: str, scope: str) -> dict[str, Any]:
        """The token response for a federated client assertion (workload identity), or SandboxAuthError."""
        subject = self.federated.get(client_id)
        try:
            claims = jwt.decode(
                assertion,
                self.signing_key,
                algorithms=[_ALGORITHM],
                audience=FEDERATION_AUDIENCE,
                issuer=SERVICE_ACCOUNT_ISSUER,
                options={"require": ["exp", "aud", "iss", "sub"]},
            )
        except jwt.PyJWTError as exc:
            raise SandboxAuthError(f"AADSTS700211: the client assertion is invalid: {exc}") from exc
        if subject is None or claims["sub"] != subject:
            raise SandboxAuthError("AADSTS70021: no matching federated identity record for the assertion")
        return self._token_response(client_id, scope)

    def issue_for_managed_identity(self, *, resource: str, client_id: str | None) -> dict[str, Any]:
        """A managed identity's token response (App Service shape), or SandboxAuthError."""
        if not self.managed_identities:
            raise SandboxAuthError("this host has no managed identity")
        chosen = client_id or self.managed_identities[0]
        if chosen not in self.managed_identities:
            raise SandboxAuthError(f"no managed identity with client id {chosen} is assigned to this host")
        body = self._token_response(chosen, f"{resource.rstrip('/')}/.default")
        return {
            "access_token": body["access_token"],
            "expires_on": str(int(self._now()) + self.lifetime_seconds),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": chosen,
        }

    def service_account_token(self, subject: str, *, lifetime_seconds: int = 3600) -> str:
        """What a cluster projects into a pod: a token for ``subject`` that Entra ID exchanges for its own."""
        now = int(self._now())
        claims = {
            "iss": SERVICE_ACCOUNT_ISSUER,
            "sub": subject,
            "aud": FEDERATION_AUDIENCE,
            "iat": now,
            "exp": now + lifetime_seconds,
        }
        return jwt.encode(claims, self.signing_key, algorithm=_ALGORITHM)

    def _token_response(self, client_id: str, scope: str) -> dict[str, Any]:
        if not scope.endswith("/.default"):
            raise SandboxAuthError("AADSTS1002012: the scope must end with /.default")
        now = int(self._now())
        claims = {
            "aud": scope.removesuffix("/.default").rstrip("/"),
            "iss": self.issuer,
            "appid": client_id,
            "oid": user_id_for(client_id),
            "uti": uuid.uuid4().hex,
            "iat": now,
            "nbf": now,
            "exp": now + self.lifetime_seconds,
        }
        token = jwt.encode(claims, self.signing_key, algorithm=_ALGORITHM)
        return {
            "token_type": "Bearer",
            "expires_in": self.lifetime_seconds,
            "ext_expires_in": self.lifetime_seconds,
            "access_token": token,
        }

    def verify(self, token: str, *, audience: str) -> Caller:
        """Check a bearer token's signature, expiry and audience; return who it belongs to."""
        known = self._verified.get((token, audience))
        # PyJWT takes a token as expired once the wall clock reaches its ``exp``: so does the cache.
        if known is not None and time.time() < known[1]:
            return known[0]
        caller, expires = self._decoded(token, audience=audience)
        if len(self._verified) >= _VERIFIED_KEPT:
            self._verified.clear()  # hundreds of tokens are never live at once; this only bounds memory
        self._verified[(token, audience)] = (caller, expires)
        return caller

    def _decoded(self, token: str, *, audience: str) -> tuple[Caller, float]:
        try:
            claims = jwt.decode(
                token,
                self.signing_key,
                algorithms=[_ALGORITHM],
                audience=audience.rstrip("/"),
                issuer=self.issuer,
                options={"require": ["exp", "aud", "appid"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise SandboxAuthError("the token has expired") from exc
        except jwt.InvalidAudienceError as exc:
            raise SandboxAuthError(f"the token is not for audience {audience}") from exc
        except jwt.PyJWTError as exc:
            raise SandboxAuthError(f"the token is invalid: {exc}") from exc
        caller = Caller(client_id=claims["appid"], user_id=claims["oid"], audience=claims["aud"])
        return caller, float(claims["exp"])


def token_endpoint(issuer: TokenIssuer) -> Callable[[Request], Awaitable[Response]]:
    """A starlette endpoint for ``POST /{tenant}/oauth2/v2.0/token`` (client credentials)."""

    async def endpoint(request: Request) -> Response:
        form = await request.form()
        if form.get("grant_type") != "client_credentials":
            return _oauth_error("unsupported_grant_type", "only client_credentials is supported", 400)
        try:
            body = _grant(issuer, form)
        except SandboxAuthError as exc:
            return _oauth_error("invalid_client", str(exc), 401)
        return JSONResponse(body)

    return endpoint


def managed_identity_endpoint(
    issuer: TokenIssuer, header_secret: str
) -> Callable[[Request], Awaitable[Response]]:
    """A starlette endpoint for the App Service / Container Apps managed identity protocol."""

    async def endpoint(request: Request) -> Response:
        presented = request.headers.get("X-IDENTITY-HEADER", "")
        if not hmac.compare_digest(presented.encode(), header_secret.encode()):
            return _oauth_error("unauthorized_client", "X-IDENTITY-HEADER is missing or wrong", 401)
        query = request.query_params
        if query.get("api-version") != _MANAGED_IDENTITY_API_VERSION or not query.get("resource"):
            return _oauth_error("invalid_request", "api-version 2019-08-01 and a resource are required", 400)
        try:
            body = issuer.issue_for_managed_identity(
                resource=query["resource"], client_id=query.get("client_id")
            )
        except SandboxAuthError as exc:
            return _oauth_error("invalid_request", str(exc), 400)
        return JSONResponse(body)

    return endpoint


def _grant(issuer: TokenIssuer, form: FormData) -> dict[str, Any]:
    client_id = str(form.get("client_id", ""))
    scope = str(form.get("scope", ""))
    if "client_assertion" in form:
        if form.get("client_assertion_type") != _JWT_BEARER:
            raise SandboxAuthError(f"AADSTS7000012: client_assertion_type must be {_JWT_BEARER}")
        return issuer.issue_for_assertion(
            client_id=client_id, assertion=str(form["client_assertion"]), scope=scope
        )
    return issuer.issue(client_id=client_id, client_secret=str(form.get("client_secret", "")), scope=scope)


@dataclass(frozen=True, slots=True)
class IdentityServer(StopOnExit):
    """The token endpoint over HTTPS on loopback: an authority azure-identity accepts."""

    server: ServerHandle
    tls: TlsFiles
    # What a host hands its processes as IDENTITY_HEADER: proof that a request comes from the host.
    identity_header: str

    @property
    def managed_identity_endpoint(self) -> str:
        """What a host hands its processes as IDENTITY_ENDPOINT."""
        return self.server.url + MANAGED_IDENTITY_ROUTE

    @property
    def authority(self) -> str:
        """The authority host URL, e.g. ``https://127.0.0.1:54321`` (tenants are paths below it)."""
        return self.server.url

    @property
    def ca_bundle(self) -> Path:
        """The PEM file a client trusts to verify this server."""
        return self.tls.ca_bundle

    def token_url(self, tenant: str) -> str:
        """The token endpoint of ``tenant``."""
        return token_url(self.authority, tenant)

    def stop(self) -> None:
        """Stop serving and delete the certificate files."""
        self.server.stop()
        self.tls.remove()


def serve_identity(issuer: TokenIssuer, *, host: str = "127.0.0.1", port: int = 0) -> IdentityServer:
    """Serve ``issuer``'s token endpoint over HTTPS with a fresh sandbox CA, in a background thread."""
    header = secrets.token_urlsafe(16)
    app = Starlette(
        routes=[
            Route(TOKEN_ROUTE, token_endpoint(issuer), methods=["POST"]),
            Route(MANAGED_IDENTITY_ROUTE, managed_identity_endpoint(issuer, header), methods=["GET"]),
        ]
    )
    tls = loopback_certificate()
    try:
        server = serve_in_thread(app, host=host, port=port, tls=tls)
    except SandboxError:
        tls.remove()
        raise
    return IdentityServer(server, tls, header)


def _oauth_error(code: str, description: str, status: int) -> Response:
    return JSONResponse({"error": code, "error_description": description}, status_code=status)


class BearerAuthMiddleware:
    """Refuses requests under ``protected_prefix`` without a valid bearer token for ``audience`` (401).

    On success the caller is put in ``scope["state"]["caller"]`` for the app to read.
    """

    def __init__(self, app: ASGIApp, *, issuer: TokenIssuer, audience: str, protected_prefix: str) -> None:
        self._app = app
        self._issuer = issuer
        self._audience = audience
        self._prefix = protected_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the token of an HTTP request under the protected prefix, then pass it on."""
        if scope["type"] != "http" or not str(scope["path"]).startswith(self._prefix):
            await self._app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        try:
            caller = self._issuer.verify(
                _bearer_token(headers.get(b"authorization", b"")), audience=self._audience
            )
        except SandboxAuthError as exc:
            response = JSONResponse(
                {"error": {"code": "0x80072560", "message": str(exc)}},
                status_code=401,
                headers={"WWW-Authenticate": f'Bearer authorization_uri="{self._issuer.issuer}"'},
            )
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["caller"] = caller
        await self._app(scope, receive, send)


def _bearer_token(authorization: bytes) -> str:
    scheme, _, token = authorization.decode("latin-1").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise SandboxAuthError("a bearer token is required")
    return token.strip()
