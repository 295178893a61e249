"""A stand-in for Entra ID: an OAuth2 client-credentials token endpoint and bearer-token checks.

Tokens are JWTs with the claims the twins rely on (``aud``, ``appid``, ``oid``, ``exp``), signed with a
sandbox key. The endpoint speaks the Microsoft identity platform's v2 client-credentials shape, so the
same client code that calls ``https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token`` calls this one.
See https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow
"""

from __future__ import annotations

import hmac
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from sandbox.errors import SandboxAuthError

__all__ = [
    "TOKEN_ROUTE",
    "BearerAuthMiddleware",
    "Caller",
    "TokenIssuer",
    "token_endpoint",
    "token_url",
    "user_id_for",
]

_ALGORITHM = "HS256"
# Where a twin mounts ``token_endpoint``: the Microsoft identity platform's v2 path.
TOKEN_ROUTE = "/{tenant}/oauth2/v2.0/token"  # noqa: S105 - a URL path, not a secret
_USER_NAMESPACE = uuid.UUID("6f1c2d4e-8a7b-4c1d-9e2f-3a4b5c6d7e8f")


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
    _now: Callable[[], float] = field(default=time.time, repr=False)

    def issue(self, *, client_id: str, client_secret: str, scope: str) -> dict[str, Any]:
        """Return the token response for a client-credentials grant, or raise SandboxAuthError."""
        expected = self.clients.get(client_id)
        if expected is None or not hmac.compare_digest(expected, client_secret):
            raise SandboxAuthError("AADSTS7000215: invalid client secret or unknown client")
        if not scope.endswith("/.default"):
            raise SandboxAuthError("AADSTS1002012: the scope must end with /.default")
        now = int(self._now())
        claims = {
            "aud": scope.removesuffix("/.default").rstrip("/"),
            "iss": self.issuer,
            "appid": client_id,
            "oid": user_id_for(client_id),
            "iat": now,
            "nbf": now,
            "exp": now + self.lifetime_seconds,
        }
        token = jwt.encode(claims, self.signing_key, algorithm=_ALGORITHM)
        return {"token_type": "Bearer", "expires_in": self.lifetime_seconds, "access_token": token}

    def verify(self, token: str, *, audience: str) -> Caller:
        """Check a bearer token's signature, expiry and audience; return who it belongs to."""
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
        return Caller(client_id=claims["appid"], user_id=claims["oid"], audience=claims["aud"])


def token_endpoint(issuer: TokenIssuer) -> Callable[[Request], Awaitable[Response]]:
    """A starlette endpoint for ``POST /{tenant}/oauth2/v2.0/token`` (client credentials)."""

    async def endpoint(request: Request) -> Response:
        form = await request.form()
        if form.get("grant_type") != "client_credentials":
            return _oauth_error("unsupported_grant_type", "only client_credentials is supported", 400)
        try:
            body = issuer.issue(
                client_id=str(form.get("client_id", "")),
                client_secret=str(form.get("client_secret", "")),
                scope=str(form.get("scope", "")),
            )
        except SandboxAuthError as exc:
            return _oauth_error("invalid_client", str(exc), 401)
        return JSONResponse(body)

    return endpoint


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
