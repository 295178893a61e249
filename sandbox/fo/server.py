"""Start the F&O twin on a loopback port, with a token issuer and credentials ready for clients."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from dualbus.sandbox.errors import SandboxError
from dualbus.sandbox.fo.app import FoTwin, create_app
from dualbus.sandbox.fo.context import DEFAULT_ORGANIZATION, Organization
from dualbus.sandbox.fo.events import DEFAULT_RETRIES, DEFAULT_RETRY_WAIT_SECONDS, EventEndpoint
from dualbus.sandbox.fo.throttling import ThrottlingConfig
from dualbus.sandbox.handles import StopOnExit
from dualbus.sandbox.http_server import ServerHandle, serve_in_thread
from dualbus.sandbox.identity import IdentityServer, TokenIssuer, serve_identity, token_url

__all__ = ["DEFAULT_AUDIENCE", "DEFAULT_CLIENTS", "WORKLOAD_CLIENTS", "FoHandle", "start_fo"]

DEFAULT_AUDIENCE = "https://fo.sandbox.dualbus.local"
DEFAULT_TENANT = "sandbox"
# The people who edit, as the workload plays them: users of their own, not dualbus. Several, as in a real
# tenant: Dataverse limits each user to 6,000 requests per web server in 5 minutes (20 a second), so one
# user could not make the hundred edits a second that 200 changes/s on both sides ask of Dataverse.
WORKLOAD_CLIENTS: tuple[str, ...] = ("workload", *(f"workload-{n}" for n in range(2, 13)))
# The applications of a real setup: the pipeline's consumers, its producers (a user of their own, so that
# their polls do not spend the consumers' request limit), and the people's.
DEFAULT_CLIENTS: Mapping[str, str] = {
    "dualbus": "dualbus-secret",
    "dualbus-producer": "dualbus-producer-secret",
    **{client: f"{client}-secret" for client in WORKLOAD_CLIENTS},
}


@dataclass(slots=True)
class FoHandle(StopOnExit):
    """A running F&O twin: where it listens, how to get a token, and its parts for tests."""

    server: ServerHandle
    twin: FoTwin
    issuer: TokenIssuer
    audience: str
    clients: Mapping[str, str]
    identity: IdentityServer
    tenant: str = DEFAULT_TENANT

    @property
    def url(self) -> str:
        """The environment URL; OData lives under ``{url}/data``."""
        return self.server.url

    @property
    def token_url(self) -> str:
        """The client-credentials token endpoint on the twin's own plain-HTTP port (for scripts)."""
        return token_url(self.url, self.tenant)

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
        """The scope to ask tokens for."""
        return f"{self.audience}/.default"

    def token(self, client_id: str = "dualbus") -> str:
        """A bearer token for one of the registered clients, issued directly (no HTTP round trip)."""
        body = self.issuer.issue(client_id=client_id, client_secret=self.clients[client_id], scope=self.scope)
        return str(body["access_token"])

    def client(self, client_id: str = "dualbus", **kwargs: object) -> httpx.Client:
        """An httpx client with ``base_url`` set and a bearer token for ``client_id``."""
        headers = {"Authorization": f"Bearer {self.token(client_id)}"}
        return httpx.Client(base_url=self.url, headers=headers, **kwargs)  # type: ignore[arg-type]  # pass-through options

    def stop(self) -> None:
        """Stop serving, deliver or drop what events are queued, close the store."""
        self.server.stop()
        self.identity.stop()
        self.twin.close()


def start_fo(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    database: Path | None = None,
    clients: Mapping[str, str] | None = None,
    audience: str = DEFAULT_AUDIENCE,
    signing_key: str | None = None,
    page_size: int = 10_000,
    default_company: str = "USMF",
    companies: Mapping[str, str] | None = None,
    throttling: ThrottlingConfig | None = None,
    event_endpoints: Iterable[tuple[EventEndpoint, Iterable[str]]] = (),
    event_backoff_seconds: float = DEFAULT_RETRY_WAIT_SECONDS,
    event_retries: int = DEFAULT_RETRIES,
    event_threads: int = 1,
    organization: Organization = DEFAULT_ORGANIZATION,
    prepared: bool = True,
) -> FoHandle:
    """Serve the F&O twin on ``host:port`` (0 picks a free port) in a background thread; ``prepared=False``
    leaves out dualbus's extension fields, as on a tenant not yet prepared (docs/deploy.md)."""
    registered = dict(clients if clients is not None else DEFAULT_CLIENTS)
    issuer = TokenIssuer(signing_key=signing_key or secrets.token_urlsafe(32), clients=registered)
    app = create_app(
        issuer=issuer,
        audience=audience,
        database=database,
        page_size=page_size,
        default_company=default_company,
        companies=companies,
        throttling=throttling,
        event_endpoints=event_endpoints,
        event_backoff_seconds=event_backoff_seconds,
        event_retries=event_retries,
        event_threads=event_threads,
        organization=organization,
        prepared=prepared,
    )
    twin: FoTwin = app.state.fo
    try:
        server = serve_in_thread(app, host=host, port=port)
    except SandboxError:
        twin.close()
        raise
    try:
        identity = serve_identity(issuer, host=host)
    except SandboxError:
        server.stop()
        twin.close()
        raise
    return FoHandle(
        server=server, twin=twin, issuer=issuer, audience=audience, clients=registered, identity=identity
    )
