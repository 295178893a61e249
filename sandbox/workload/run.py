"""Start both twins, seed them, maybe stream changes, serve until stopped: the flow of ``dualbus sandbox``."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from dualbus.sandbox.dataverse import RunningDataverse, start_dataverse
from dualbus.sandbox.fo.events import EventEndpoint
from dualbus.sandbox.fo.server import DEFAULT_CLIENTS, FoHandle, start_fo
from dualbus.sandbox.workload.dataverse_shape import dataverse_master, dataverse_reference
from dualbus.sandbox.workload.generate import Dataset, generate
from dualbus.sandbox.workload.load import load_dataverse, load_fo, load_fo_store
from dualbus.sandbox.workload.plan import StreamConfig
from dualbus.sandbox.workload.stream import StreamSummary, run_change_stream

__all__ = ["SandboxRun", "run_sandbox", "start_sandbox"]

# Above this many rows the F&O seed goes straight into the store: HTTP would only add minutes.
_HTTP_SEED_LIMIT = 5_000


@dataclass(slots=True)
class SandboxRun:
    """Running twins and what was seeded into them."""

    fo: FoHandle
    dataverse: RunningDataverse | None  # None only until started, or when starting it failed
    dataset: Dataset
    clients: Mapping[str, str]
    seeded: dict[str, int] = field(default_factory=dict)

    def fo_client(self, client_id: str = "workload") -> httpx.Client:
        """An authenticated client for the F&O twin."""
        return self.fo.client(client_id)

    def dataverse_client(self, client_id: str = "workload") -> httpx.Client | None:
        """An authenticated client whose base URL is the Dataverse Web API root, or None without that twin."""
        if self.dataverse is None:
            return None
        scope = self.dataverse.scope
        token = self.dataverse.issuer.issue(
            client_id=client_id, client_secret=self.clients[client_id], scope=scope
        )
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        return httpx.Client(base_url=self.dataverse.api_url, headers=headers)

    def info(self) -> dict[str, Any]:
        """Where the twins listen and how to get tokens, as JSON (what ``--info-file`` holds)."""
        fo = self.fo
        info: dict[str, Any] = {
            "fo": {
                "url": fo.url,
                "token_url": fo.token_url,
                "authority": fo.authority,
                "tenant": fo.tenant,
                "ca_bundle": str(fo.ca_bundle),
                "audience": fo.audience,
                "scope": fo.scope,
            },
            "clients": dict(self.clients),
            "seeded": dict(self.seeded),
        }
        if self.dataverse is not None:
            dv = self.dataverse
            info["dataverse"] = {
                "url": dv.url,
                "api_url": dv.api_url,
                "token_url": dv.token_url,
                "authority": dv.authority,
                "tenant": dv.tenant,
                "ca_bundle": str(dv.ca_bundle),
                "audience": dv.audience,
                "scope": dv.scope,
            }
        return info

    def write_info(self, path: Path) -> None:
        """Write :meth:`info` whole and then rename it into place, so a reader never sees half of it.

        It holds the clients' secrets: the file is the owner's alone (0600), written under a fresh name
        that no one else can have put a link at first (``mkstemp``), not a predictable one beside it.
        """
        handle, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
        try:
            with os.fdopen(handle, "w") as out:
                out.write(json.dumps(self.info(), indent=2))
            Path(partial).replace(path)
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise

    def describe(self) -> str:
        """URLs, token endpoints and credentials, for a person to paste into settings."""
        fo = self.fo
        lines = [f"F&O twin         {fo.url}/data   token {fo.token_url}   scope {fo.scope}"]
        # What DUALBUS_FO__AUTHORITY_HOST / __TENANT_ID / __CA_BUNDLE take (azure-identity wants https).
        lines.append(f"  authority      {fo.authority}   tenant {fo.tenant}   CA {fo.ca_bundle}")
        if self.dataverse is not None:
            dv = self.dataverse
            lines.append(f"Dataverse twin   {dv.api_url}   token {dv.token_url}   scope {dv.scope}")
            lines.append(f"  authority      {dv.authority}   tenant {dv.tenant}   CA {dv.ca_bundle}")
        lines += [f"client           {cid} / {secret}" for cid, secret in self.clients.items()]
        lines.append(f"seeded           {self.seeded}")
        return "\n".join(lines)

    def stop(self) -> None:
        """Stop both twins."""
        self.fo.stop()
        if self.dataverse is not None:
            self.dataverse.stop()


def start_sandbox(
    *,
    fo_port: int = 0,
    dataverse_port: int = 0,
    seed: int = 1,
    customers: int = 100,
    vendors: int = 20,
    products: int = 50,
    seed_dataverse_customers: bool = True,
    data_dir: Path | None = None,
    clients: Mapping[str, str] | None = None,
    fo_event_endpoints: Iterable[tuple[EventEndpoint, Iterable[str]]] = (),
    fo_event_threads: int = 1,
) -> SandboxRun:
    """Start the F&O and Dataverse twins and seed them with ``generate(seed, ...)``.

    Dataverse gets the reference data and, with ``seed_dataverse_customers``, the master data too (accounts,
    contacts, vendors, products), as if an initial sync had run, so that the stream can change them on both
    sides.
    """
    registered = dict(clients or DEFAULT_CLIENTS)
    fo_db = data_dir / "fo.sqlite" if data_dir else None
    dv_db = data_dir / "dataverse.sqlite" if data_dir else None
    fo = start_fo(
        port=fo_port,
        clients=registered,
        database=fo_db,
        event_endpoints=fo_event_endpoints,
        event_threads=fo_event_threads,
    )
    run = SandboxRun(
        fo=fo,
        dataverse=None,
        dataset=generate(seed, customers=customers, vendors=vendors, products=products),
        clients=registered,
    )
    try:
        run.dataverse = start_dataverse(clients=registered, port=dataverse_port, database=dv_db)
        _seed(run, seed_dataverse_customers=seed_dataverse_customers)
    except BaseException:
        run.stop()
        raise
    return run


def _seed(run: SandboxRun, *, seed_dataverse_customers: bool) -> None:
    if run.fo.twin.store.count("LegalEntities") == 0:  # a persisted sandbox keeps its seed
        if run.dataset.count() > _HTTP_SEED_LIMIT:
            run.seeded["fo"] = load_fo_store(run.fo.twin.store, run.dataset)
        else:
            with run.fo_client() as client:
                run.seeded["fo"] = load_fo(client, run.dataset)
    dataverse = run.dataverse_client()
    if dataverse is None:
        return
    with dataverse as client:
        if not client.get("cdm_companies", params={"$top": "1"}).json().get("value"):
            tables: dict[str, list[dict[str, Any]]] = dataverse_reference(run.dataset)
            if seed_dataverse_customers:
                # The seed's companies have fixed ids (dataverse_reference), so master rows can bind to them.
                tables |= dataverse_master(run.dataset)
            run.seeded["dataverse"] = load_dataverse(client, tables)


def run_sandbox(
    *,
    fo_port: int = 0,
    dataverse_port: int = 0,
    seed: int = 1,
    customers: int = 100,
    vendors: int = 20,
    products: int = 50,
    data_dir: Path | None = None,
    clients: Mapping[str, str] | None = None,
    info_file: Path | None = None,
    stream: StreamConfig | None = None,
    fo_event_endpoints: Iterable[tuple[EventEndpoint, Iterable[str]]] = (),
    fo_event_threads: int = 1,
    stop: threading.Event | None = None,
    write: Callable[[str], object] = sys.stdout.write,
) -> StreamSummary | None:
    """Start and seed both twins, print how to reach them, stream changes if asked, serve until ``stop``.

    ``info_file`` also gets :meth:`SandboxRun.info` as JSON once the twins are seeded. ``fo_event_endpoints``
    activates F&O data events, e.g. ``[(ServiceBusEndpoint(conn, "fo-events"), ["CustomersV3"])]``, before
    seeding, so the seed itself is delivered as events too.

    Without ``stop`` it serves until interrupted (Ctrl+C). Returns the stream's summary when one ran.
    """
    run = start_sandbox(
        fo_port=fo_port,
        dataverse_port=dataverse_port,
        seed=seed,
        customers=customers,
        vendors=vendors,
        products=products,
        data_dir=data_dir,
        clients=clients,
        fo_event_endpoints=fo_event_endpoints,
        fo_event_threads=fo_event_threads,
    )
    summary = None
    stop = stop or threading.Event()
    try:
        write(run.describe() + "\n")
        if info_file is not None:
            run.write_info(info_file)
        if stream is not None:
            summary = _stream(run, stream)
            write(f"stream           {summary.as_dict()}\n")
        # A bounded wait, so that the main thread gets to run signal handlers (which may set ``stop``).
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        run.stop()
    return summary


def _stream(run: SandboxRun, config: StreamConfig) -> StreamSummary:
    dataverse = run.dataverse_client()
    with run.fo_client() as fo:
        try:
            return run_change_stream(fo, run.dataset, config, dataverse=dataverse)
        finally:
            if dataverse is not None:
                dataverse.close()
