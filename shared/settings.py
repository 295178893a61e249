"""Typed, keyword-only configuration from the environment; secrets are SecretStr and never logged.

Every variable starts with ``DUALBUS_``; nested groups use a double underscore, e.g.
``DUALBUS_SERVICEBUS__CONNECTION_STRING`` or ``DUALBUS_DATAVERSE__CLIENT_SECRET``.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from dualbus.shared.envelope import format_validation_error
from dualbus.shared.errors import ConfigError

__all__ = ["ApiSettings", "Credential", "ServiceBusSettings", "Settings", "load_settings"]


class ServiceBusSettings(BaseModel):
    """How to reach Service Bus: a connection string (SAS or the emulator), or a namespace + Entra ID."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    connection_string: SecretStr | None = None
    # Fully qualified, e.g. "contoso.servicebus.windows.net"; used with DefaultAzureCredential.
    namespace: str | None = None

    @field_validator("namespace")
    @classmethod
    def _no_connection_string(cls, namespace: str | None) -> str | None:
        # A connection string in the wrong setting, for every command (the admin API's among them): named
        # as such, and never echoed, as it holds its key.
        if namespace is not None and ("SharedAccess" in namespace or ";" in namespace):
            raise ValueError(
                "holds a connection string: put it in DUALBUS_SERVICEBUS__CONNECTION_STRING, or set the "
                "namespace's host name alone"
            )
        return namespace

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.connection_string is None) == (self.namespace is None):
            raise ValueError("set exactly one of connection_string and namespace")
        return self


class Credential(StrEnum):
    """How dualbus proves who it is to Entra ID (``DUALBUS_FO__CREDENTIAL`` and the like)."""

    # An application registration's client id and secret.
    CLIENT_SECRET = "client_secret"  # noqa: S105 - the name of a kind of credential, not a secret
    # The managed identity of the VM, App Service or Container App; ``client_id`` picks a user-assigned one.
    MANAGED_IDENTITY = "managed_identity"
    # AKS workload identity: a federated service account token (AZURE_FEDERATED_TOKEN_FILE by default).
    WORKLOAD_IDENTITY = "workload_identity"
    # azure-identity's DefaultAzureCredential chain (environment, workload and managed identity, CLI...).
    DEFAULT = "default"


# A token endpoint written out in full: {authority}/{tenant}/oauth2/v2.0/token (the v2 endpoint's shape).
_TOKEN_URL = re.compile(r"^(?P<authority>https?://[^/]+(?:/.*?)?)/(?P<tenant>[^/]+)/oauth2/v2\.0/token/?$")


class ApiSettings(BaseModel):
    """How to reach one system's API (F&O or Dataverse) and get Entra ID tokens for it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: Annotated[str, Field(min_length=1)]
    credential: Credential = Credential.CLIENT_SECRET
    tenant_id: str = "organizations"
    # The application (client) id; for a managed identity, the user-assigned identity's client id.
    client_id: str | None = None
    client_secret: SecretStr | None = None
    # The Entra ID authority host, https only (azure-identity refuses http); defaults to the public cloud
    # (or AZURE_AUTHORITY_HOST). Sovereign clouds: https://login.microsoftonline.us, ...chinacloudapi.cn.
    authority_host: str | None = None
    # Older form of authority_host + tenant_id: the whole v2 token endpoint URL; still accepted.
    token_url: str | None = None
    # A PEM file of CAs to trust for the authority (a private or sandbox CA); the system's CAs otherwise.
    ca_bundle: Path | None = None
    # Workload identity's federated token file; AZURE_FEDERATED_TOKEN_FILE (set by AKS) when left out.
    token_file: Path | None = None
    # The resource the token is for; defaults to the API's URL.
    audience: str | None = None
    timeout_seconds: Annotated[float, Field(gt=0)] = 30.0
    # Dataverse: how often one consumer process may send a $batch that is not full (None: at once). Its user
    # gets 6000 requests in 5 minutes a web server (20 a second), shared with the other consumers and the
    # producer's polls; a $batch counts as one, and full batches (an initial sync) are not held back.
    # https://learn.microsoft.com/power-apps/developer/data-platform/api-limits
    partial_batches_per_second: Annotated[float, Field(gt=0)] | None = 5.0

    @model_validator(mode="after")
    def _credential_is_complete(self) -> Self:
        if self.credential is Credential.CLIENT_SECRET and not (self.client_id and self.client_secret):
            raise ValueError(
                "credential client_secret needs client_id and client_secret "
                "(or set credential to managed_identity, workload_identity or default)"
            )
        if self.authority_host is not None and not self.authority_host.startswith("https://"):
            raise ValueError(f"authority_host must be an https:// URL, not {self.authority_host!r}")
        if self.token_url is not None:
            self._token_url_parts()
        return self

    def _token_url_parts(self) -> tuple[str, str]:
        match = _TOKEN_URL.match(self.token_url or "")
        if match is None:
            raise ValueError(f"token_url is not https://host/<tenant>/oauth2/v2.0/token: {self.token_url!r}")
        if not match["authority"].startswith("https://"):
            raise ValueError(f"token_url must be https (Entra ID clients refuse http): {self.token_url!r}")
        return match["authority"], match["tenant"]

    @property
    def resolved_authority(self) -> str | None:
        """The authority host; None leaves azure-identity's (the public cloud, or AZURE_AUTHORITY_HOST)."""
        if self.authority_host is not None:
            return self.authority_host.rstrip("/")
        return self._token_url_parts()[0] if self.token_url else None

    @property
    def resolved_tenant(self) -> str:
        """The tenant (directory) id; an explicit token_url's tenant wins, as it always did."""
        return self._token_url_parts()[1] if self.token_url else self.tenant_id

    @property
    def resolved_token_url(self) -> str:
        """The v2 token endpoint these settings lead to (for display and for passing on as ``token_url``)."""
        authority = self.resolved_authority or "https://login.microsoftonline.com"
        return f"{authority}/{self.resolved_tenant}/oauth2/v2.0/token"

    @property
    def scope(self) -> str:
        """The client-credentials scope: the resource followed by ``/.default``."""
        return f"{(self.audience or self.url).rstrip('/')}/.default"


class Settings(BaseSettings):
    """Everything a producer or consumer needs, read from ``DUALBUS_*`` environment variables."""

    model_config = SettingsConfigDict(
        env_prefix="DUALBUS_", env_nested_delimiter="__", extra="ignore", frozen=True
    )

    servicebus: ServiceBusSettings | None = None
    fo: ApiSettings | None = None
    dataverse: ApiSettings | None = None
    state_dir: Path = Path(".dualbus")
    # The operators' audit trail (replays, purges, pauses, alerts); see dualbus.ops.audit.audit_path.
    audit_file: Path | None = None
    log_level: str = "INFO"
    log_format: str = "json"

    def secrets(self) -> tuple[SecretStr, ...]:
        """Every secret set here (the APIs' client secrets, the Service Bus connection string), for a
        process to register for redaction before it logs a line."""
        held = (
            self.fo.client_secret if self.fo else None,
            self.dataverse.client_secret if self.dataverse else None,
            self.servicebus.connection_string if self.servicebus else None,
        )
        return tuple(secret for secret in held if secret is not None)


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment (keyword overrides win); ConfigError names what is wrong."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]  # overrides are validated by pydantic
    except ValidationError as exc:
        raise ConfigError(f"invalid settings: {format_validation_error(exc)}") from exc
