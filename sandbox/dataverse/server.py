"""Start the Dataverse twin and its token endpoint on a loopback port, for tests, benchmarks and demos."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dualbus.d365 import DvTable
from dualbus.sandbox.dataverse.app import create_app
from dualbus.sandbox.dataverse.limits import ServiceProtectionLimits
from dualbus.sandbox.dataverse.odata import API_PREFIX
from dualbus.sandbox.dataverse.store import Store
from dualbus.sandbox.dataverse.tables import TABLES, UNPREPARED_TABLES
from dualbus.sandbox.errors import SandboxError
from dualbus.sandbox.handles import StopOnExit
from dualbus.sandbox.http_server import ServerHandle, serve_in_thread
from dualbus.sandbox.identity import IdentityServer, TokenIssuer, serve_identity, token_url

__all__ = ["DEFAULT_AUDIENCE", "RunningDataverse", "start_dataverse"]

DEFAULT_AUDIENCE = "https://dataverse.sandbox.local"
_DEFAULT_LIMITS = ServiceProtectionLimits()


@dataclass(frozen=True, slots=True)
class RunningDataverse(StopOnExit):
    """A running twin: where it listens, how to get a token for it, and how to stop it."""

    handle: ServerHandle
    issuer: TokenIssuer
    audience: str
    tenant: str
    store: Store
    identity: IdentityServer

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:54321`` (what a real org URL would be)."""
        return self.handle.url

    @property
    def api_url(self) -> str:
        """The Web API root, ending in ``/api/data/v9.2/``."""
        return f"{self.handle.url}{API_PREFIX}"

    @property
    def token_url(self) -> str:
        """The client-credentials token endpoint on the twin's own plain-HTTP port (for scripts)."""
        return token_url(self.handle.url, self.tenant)

    @property
    def authority(self) -> str:
        """The HTTPS authority serving the same tokens, for azure-identity (``{authority}/{tenant}/...``)."""
        return self.identity.authority

    @property
    def ca_bundle(self) -> Path:
        """The PEM file that makes a client trust ``authority``."""
        return self.identity.ca_bundle

    @property
    def scope(self) -> str:
        """The scope a client asks a token for."""
        return f"{self.audience}/.default"

    def stop(self) -> None:
        """Stop the server, then close the store's database."""
        self.handle.stop()
        self.identity.stop()
        self.store.close()


def start_dataverse(
    *,
    clients: Mapping[str, str],
    port: int = 0,
    host: str = "127.0.0.1",
    limits: ServiceProtectionLimits | None = _DEFAULT_LIMITS,
    database: Path | None = None,
    audience: str = DEFAULT_AUDIENCE,
    tenant: str = "sandbox",
    signing_key: str | None = None,
    untracked_tables: frozenset[str] = frozenset(),
    prepared: bool = True,
    without_keys: frozenset[str] = frozenset(),
) -> RunningDataverse:
    """Serve the twin; ``clients`` maps client ids to secrets, ``limits=None`` turns throttling off,
    ``untracked_tables`` names entity sets whose change tracking is not enabled, ``prepared=False`` leaves
    out dualbus's column, as on an environment not yet prepared (docs/deploy.md), and ``without_keys``
    names entity sets whose alternate keys were never made (neither listed nor usable in a key segment)."""
    issuer = TokenIssuer(signing_key=signing_key or secrets.token_urlsafe(32), clients=dict(clients))
    app = create_app(
        issuer=issuer,
        audience=audience,
        limits=limits,
        database=database,
        untracked_tables=untracked_tables,
        tables=_without_keys(TABLES if prepared else UNPREPARED_TABLES, without_keys),
    )
    store: Store = app.state.store
    try:
        handle = serve_in_thread(app, host=host, port=port)
    except SandboxError:
        store.close()
        raise
    try:
        identity = serve_identity(issuer, host=host)
    except SandboxError:
        handle.stop()
        store.close()
        raise
    return RunningDataverse(
        handle=handle, issuer=issuer, audience=audience, tenant=tenant, store=store, identity=identity
    )


def _without_keys(tables: Mapping[str, DvTable], entity_sets: frozenset[str]) -> Mapping[str, DvTable]:
    """``tables`` with the alternate keys of ``entity_sets`` left out."""
    unknown = entity_sets - tables.keys()
    if unknown:
        raise SandboxError(f"no such tables to leave without keys: {', '.join(sorted(unknown))}")
    if not entity_sets:
        return tables
    return {
        name: table.model_copy(update={"alternate_keys": ()}) if name in entity_sets else table
        for name, table in tables.items()
    }
