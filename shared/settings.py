"""Typed, keyword-only configuration from the environment; secrets are SecretStr and never logged.

Every variable starts with ``DUALBUS_``; nested groups use a double underscore, e.g.
``DUALBUS_SERVICEBUS__CONNECTION_STRING`` or ``DUALBUS_DATAVERSE__CLIENT_SECRET``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.envelope import format_validation_error
from shared.errors import ConfigError

__all__ = ["ApiSettings", "ServiceBusSettings", "Settings", "load_settings"]


class ServiceBusSettings(BaseModel):
    """How to reach Service Bus: a connection string (SAS or the emulator), or a namespace + Entra ID."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    connection_string: SecretStr | None = None
    # Fully qualified, e.g. "contoso.servicebus.windows.net"; used with DefaultAzureCredential.
    namespace: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.connection_string is None) == (self.namespace is None):
            raise ValueError("set exactly one of connection_string and namespace")
        return self


class ApiSettings(BaseModel):
    """How to reach one system's API (F&O or Dataverse) with an Entra ID application."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: Annotated[str, Field(min_length=1)]
    tenant_id: str = "organizations"
    client_id: Annotated[str, Field(min_length=1)]
    client_secret: SecretStr
    # The OAuth2 token endpoint; defaults to Entra ID's for the tenant.
    token_url: str | None = None
    # The resource the token is for; defaults to the API's URL.
    audience: str | None = None
    timeout_seconds: Annotated[float, Field(gt=0)] = 30.0

    @property
    def resolved_token_url(self) -> str:
        """The token endpoint to call."""
        return self.token_url or f"https://login.microsoftonline.com/{self.tenant_id}/oauth2/v2.0/token"

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


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment (keyword overrides win); ConfigError names what is wrong."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]  # overrides are validated by pydantic
    except ValidationError as exc:
        raise ConfigError(f"invalid settings: {format_validation_error(exc)}") from exc
