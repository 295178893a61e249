"""Entra ID tokens through azure-identity: the one module importing it, where its errors are translated.

``open_tokens(settings)`` gives a ``TokenProvider`` (see ``shared.api``) for one API, backed by the async
credential ``ApiSettings.credential`` names: a client secret, the host's managed identity, AKS workload
identity, or the DefaultAzureCredential chain. azure-identity caches tokens and renews them before they
expire; what it raises (``ClientAuthenticationError``, ``CredentialUnavailableError``, a request that never
reached the endpoint, and the ``KeyError``/``ValueError`` of a 200 whose body is not a token) becomes a
TransientError here: credentials are fixed by an operator, so messages wait rather than being dead-lettered.
Messages are one line and never contain the client secret.

Service Bus with a namespace (no connection string) signs in with DefaultAzureCredential; the bus modules
get it from ``namespace_credential`` / ``async_namespace_credential`` so that they, too, leave azure-identity
to this module (the Service Bus SDK translates what the credential raises into its own errors).

``token(refresh=True)`` (after a 401) must return a token the API has not already refused. azure-identity
has no "skip the cache" switch: its cache is bypassed only for a claims challenge, which is sent to Entra
ID and must be a real one (F&O and Dataverse send none), and ``enable_cae`` just selects a second cache.
So a refresh replaces the credential, and its cache with it; concurrent refreshes after one 401 wave
share a single replacement.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol

from azure.core.credentials import TokenCredential
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import AzureError
from azure.identity import DefaultAzureCredential as SyncDefaultAzureCredential
from azure.identity.aio import (
    ClientSecretCredential,
    DefaultAzureCredential,
    ManagedIdentityCredential,
    WorkloadIdentityCredential,
)

from dualbus.shared.errors import ConfigError, TransientError
from dualbus.shared.logs import redact
from dualbus.shared.settings import ApiSettings, Credential

__all__ = [
    "ClosableCredential",
    "IdentityTokens",
    "async_namespace_credential",
    "build_credential",
    "namespace_credential",
    "open_tokens",
]

# azure-identity logs every get_token at INFO, cache hits included: one line per API request at dualbus's
# default level. Its warnings (a failed request) still pass; dualbus reports failures itself.
logging.getLogger("azure.identity").setLevel(logging.WARNING)

# What azure-identity lets escape when a 200 carries no usable token (it indexes the decoded body as a dict).
_MALFORMED_ANSWER = (KeyError, TypeError, ValueError, AttributeError)
_MAX_DETAIL = 300


class ClosableCredential(TokenCredential, Protocol):
    """A synchronous credential that holds a connection pool to close."""

    def close(self) -> None:
        """Release the credential's HTTP session."""
        ...


def namespace_credential() -> ClosableCredential:
    """The synchronous DefaultAzureCredential the Service Bus clients use with a namespace."""
    return SyncDefaultAzureCredential()


def async_namespace_credential() -> AsyncTokenCredential:
    """The asynchronous DefaultAzureCredential the Service Bus clients use with a namespace."""
    return DefaultAzureCredential()


def build_credential(settings: ApiSettings) -> AsyncTokenCredential:
    """The async azure-identity credential ``settings`` choose; ConfigError when it cannot be built."""
    options = _transport_options(settings)
    try:
        return _credential(settings, options)
    except ValueError as exc:
        # azure-identity's own checks: a malformed tenant, an http authority, missing workload settings.
        raise ConfigError(f"cannot set up the {settings.credential.value} credential: {exc}") from exc


def _credential(settings: ApiSettings, options: dict[str, Any]) -> AsyncTokenCredential:
    tenant = settings.resolved_tenant if _tenant_was_given(settings) else None
    match settings.credential:
        case Credential.CLIENT_SECRET:
            secret = settings.client_secret.get_secret_value() if settings.client_secret else ""
            return ClientSecretCredential(
                settings.resolved_tenant, settings.client_id or "", secret, **_no_retries(options)
            )
        case Credential.WORKLOAD_IDENTITY:
            token_file = str(settings.token_file) if settings.token_file else None
            return WorkloadIdentityCredential(
                tenant_id=tenant,
                client_id=settings.client_id,
                token_file_path=token_file,
                **_no_retries(options),
            )
        case Credential.MANAGED_IDENTITY:
            # IMDS answers 404/410 while a VM's identity is being set up; azure-identity's retries cover that.
            return ManagedIdentityCredential(client_id=settings.client_id, **options)
        case Credential.DEFAULT:
            return DefaultAzureCredential(
                managed_identity_client_id=settings.client_id,
                workload_identity_client_id=settings.client_id,
                workload_identity_tenant_id=tenant,
                **options,
            )


def _tenant_was_given(settings: ApiSettings) -> bool:
    # Left at its default, the tenant comes from AZURE_TENANT_ID, which AKS's workload identity injects.
    return "tenant_id" in settings.model_fields_set or settings.token_url is not None


def _transport_options(settings: ApiSettings) -> dict[str, Any]:
    options: dict[str, Any] = {
        "connection_timeout": settings.timeout_seconds,
        "read_timeout": settings.timeout_seconds,
    }
    if settings.resolved_authority is not None:
        options["authority"] = settings.resolved_authority
    if settings.ca_bundle is not None:
        # azure-core verifies against this PEM file instead of the system's CAs (never "don't verify").
        options["connection_verify"] = str(settings.ca_bundle)
    return options


def _no_retries(options: dict[str, Any]) -> dict[str, Any]:
    # A failed token request surfaces as a TransientError and the caller's retry policy waits and retries;
    # azure-core retrying underneath would multiply the waits.
    return {**options, "retry_total": 0}


class IdentityTokens:
    """A ``TokenProvider`` over an azure-identity credential: cached tokens, translated errors."""

    def __init__(self, settings: ApiSettings) -> None:
        self._settings = settings
        self._credential = build_credential(settings)
        self._generation = 0
        self._lock = asyncio.Lock()

    async def token(self, *, refresh: bool = False) -> str:
        """A valid access token; with ``refresh``, one from a new credential (the old one was refused)."""
        seen = self._generation
        async with self._lock:
            if refresh and seen == self._generation:
                await self._replace_credential()
            return await self._get_token()

    async def aclose(self) -> None:
        """Close the credential's HTTP session."""
        await self._credential.close()

    async def _replace_credential(self) -> None:
        old, self._credential = self._credential, build_credential(self._settings)
        self._generation += 1
        await old.close()

    async def _get_token(self) -> str:
        scope = self._settings.scope
        try:
            access = await self._credential.get_token(scope)
        except AzureError as exc:
            raise TransientError(self._failure(exc)) from exc
        except _MALFORMED_ANSWER as exc:
            raise TransientError(self._failure(exc, malformed=True)) from exc
        except OSError as exc:
            # The workload identity's token file, read by azure-identity on every request, missing or not
            # readable (a wrong path, the pod's permissions): a credential problem, which makes work wait.
            raise TransientError(self._failure(exc)) from exc
        return access.token

    def _failure(self, exc: BaseException, *, malformed: bool = False) -> str:
        where = self._settings.resolved_authority or "Entra ID"
        if self._settings.credential is Credential.MANAGED_IDENTITY:
            where = "the host's managed identity endpoint"
        what = "answered without a usable token" if malformed else "gave no token"
        detail = f"{type(exc).__name__}: {exc}".splitlines()[0] if str(exc) else type(exc).__name__
        secret = self._settings.client_secret.get_secret_value() if self._settings.client_secret else ""
        if secret:
            detail = detail.replace(secret, "***")
        detail = redact(detail)[:_MAX_DETAIL]
        return f"{where} {what} for {self._settings.scope} ({self._settings.credential.value}): {detail}"


@asynccontextmanager
async def open_tokens(settings: ApiSettings) -> AsyncIterator[IdentityTokens]:
    """Tokens for the API ``settings`` describe; the credential is closed on exit."""
    tokens = IdentityTokens(settings)
    try:
        yield tokens
    finally:
        await tokens.aclose()
