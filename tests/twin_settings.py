"""ApiSettings and DUALBUS_* variables that reach a running twin the way a deployment reaches Entra ID."""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

from dualbus.shared.settings import ApiSettings


def api_settings(twin: Any, *, client_id: str, secret: str, url: str | None = None) -> ApiSettings:
    """Client-secret settings for ``twin`` (an F&O or Dataverse handle): tokens from its HTTPS authority."""
    return ApiSettings(
        url=url or twin.url,
        client_id=client_id,
        client_secret=SecretStr(secret),
        authority_host=twin.authority,
        tenant_id=twin.tenant,
        ca_bundle=twin.ca_bundle,
        audience=twin.audience,
    )


def api_environment(name: str, api: ApiSettings) -> dict[str, str]:
    """The ``DUALBUS_{name}__*`` variables that give a subprocess these settings."""
    assert api.client_id is not None
    assert api.client_secret is not None
    env = {
        f"DUALBUS_{name}__URL": api.url,
        f"DUALBUS_{name}__CLIENT_ID": api.client_id,
        f"DUALBUS_{name}__CLIENT_SECRET": api.client_secret.get_secret_value(),
        f"DUALBUS_{name}__TENANT_ID": api.resolved_tenant,
        f"DUALBUS_{name}__AUDIENCE": api.audience or api.url,
    }
    if api.resolved_authority is not None:
        env[f"DUALBUS_{name}__AUTHORITY_HOST"] = api.resolved_authority
    if api.ca_bundle is not None:
        env[f"DUALBUS_{name}__CA_BUNDLE"] = str(api.ca_bundle)
    return env


class IssuedTokens:
    """Tokens straight from a twin's issuer (no HTTP): for tests about sinks, not about getting tokens."""

    def __init__(self, twin: Any, *, client_id: str, secret: str) -> None:
        self._twin = twin
        self._client_id = client_id
        self._secret = secret

    async def token(self, *, refresh: bool = False) -> str:  # noqa: ARG002 - every call issues a new one
        """A new token for the client."""
        issuer = self._twin.issuer
        body = issuer.issue(client_id=self._client_id, client_secret=self._secret, scope=self._twin.scope)
        return str(body["access_token"])
