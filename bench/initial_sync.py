"""Initial sync benchmark: F&O twin → producers → emulator → consumers → Dataverse twin; prints JSON.

Seeds the F&O twin with companies, currencies, customer groups and N customers (70,000 by default), then
runs the initial sync of areas company, currency and customer while the to-dataverse consumers of those
areas apply what arrives. Reported: the publish side alone (the initial sync's own duration and rate) and
the whole pipeline (until the Dataverse twin holds every account), bounded by ``--time-limit``.

The emulator and each twin run in a child process of their own (they stand for services apart, and none
of them must wait for another's threads), the producer of the lookups and the consumers in this process,
the customers' initial sync in one more. Each process's CPU seconds are reported too: on a shared machine
they tell where the work goes when the wall-clock figures scatter. The Dataverse twin enforces the
documented service protection limits for one application user unless ``--limits off``.

The resident memory of the consumers' process and of the initial-sync process is sampled every
``--rss-every`` seconds; a flat run shows alike peaks in the first and last third.

Run: ``python bench/initial_sync.py [--customers 70000] [--limits documented|off] [--time-limit 300]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from dataclasses import replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
import orjson
import psutil
from pydantic import SecretStr

if __package__ in {None, ""}:  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._machine import machine_figures
from dualbus.consumers import ConsumerMetrics, run_consumer
from dualbus.producers.initial_sync import SyncSummary, run_initial_sync
from dualbus.producers.runner import ProducerContext, open_context
from dualbus.producers.settings import ProducerOptions
from dualbus.sandbox.dataverse.tables import TABLES
from dualbus.shared.envelope import Origin
from dualbus.shared.settings import ApiSettings, ServiceBusSettings, Settings
from dualbus.shared.topology import Direction

_AREAS = ("company", "currency", "customer")
_COMPANIES = ("USMF", "DEMF", "GBSI")
_CURRENCIES = (("USD", "US dollar", "$"), ("EUR", "Euro", "E"), ("GBP", "Pound", "L"))
_GROUPS = ("10", "20", "30")
_CLIENTS = {"dualbus": "dualbus-secret", "observer": "observer-secret", "workload": "workload-secret"}
_DV_API = "/api/data/v9.2/"
_BARRIER_SECONDS = 60.0
_BATCH_BYTES = 64 * 1024


def _serve_emulator(conn: Connection) -> None:
    """Child process: the emulator; serves until told to stop."""
    import threading  # noqa: PLC0415 - child-only imports keep the parent light

    emulator = start_emulator()
    thread = threading.Thread(target=emulator.serve_forever, daemon=True)
    thread.start()
    conn.send({"connection_string": emulator.connection_string})
    conn.recv()
    conn.send(_cpu_seconds())
    emulator.stop()
    thread.join(timeout=10)


def _serve_fo(conn: Connection, customers: int) -> None:
    """Child process: the F&O twin, seeded (its seeding's CPU is counted in its figure); serves until told
    to stop."""
    from dualbus.sandbox.fo import start_fo  # noqa: PLC0415 - child-only imports keep the parent light

    fo = start_fo(page_size=10_000, clients=_CLIENTS)
    _seed(fo.twin.store, customers)
    conn.send(
        {"fo": [fo.url, fo.token_url, fo.audience, fo.identity.token_url(fo.tenant), str(fo.ca_bundle)]}
    )
    conn.recv()
    conn.send(_cpu_seconds())
    fo.stop()


def _serve_dataverse(conn: Connection, limits_on: bool) -> None:
    """Child process: the Dataverse twin; serves until told to stop."""
    from dualbus.sandbox.dataverse import ServiceProtectionLimits, start_dataverse  # noqa: PLC0415

    dataverse = start_dataverse(clients=_CLIENTS, limits=ServiceProtectionLimits() if limits_on else None)
    conn.send(
        {
            "dataverse": [
                dataverse.url,
                dataverse.token_url,
                dataverse.audience,
                dataverse.identity.token_url(dataverse.tenant),
                str(dataverse.ca_bundle),
            ],
        }
    )
    conn.recv()
    conn.send(_cpu_seconds())
    dataverse.stop()


def _cpu_seconds() -> float:
    """CPU time this process used so far, user and system."""
    times = os.times()
    return round(times.user + times.system, 1)


def start_emulator() -> Any:  # noqa: ANN401 - the emulator server
    """An in-memory emulator with the topology's entities, on a free loopback port."""
    from dualbus.sandbox.servicebus.config import load_config  # noqa: PLC0415
    from dualbus.sandbox.servicebus.server import EmulatorServer  # noqa: PLC0415
    from dualbus.shared.render import render_emulator_config  # noqa: PLC0415
    from dualbus.shared.topology import default_topology  # noqa: PLC0415

    return EmulatorServer(config=load_config(render_emulator_config(default_topology())))


def _seed(store: Any, customers: int) -> None:  # noqa: ANN401 - the F&O twin's store
    """Companies, currencies, three groups per company and ``customers`` customers spread over them."""
    who = {"modified_by": "workload"}
    for company in _COMPANIES:
        store.insert("LegalEntities", {"LegalEntityId": company, "Name": f"Company {company}"}, **who)
        for group in _GROUPS:
            values = {"dataAreaId": company, "CustomerGroupId": group, "Description": f"Group {group}"}
            store.insert("CustomerGroups", values, **who)
    for code, name, symbol in _CURRENCIES:
        store.insert("Currencies", {"CurrencyCode": code, "Name": name, "Symbol": symbol}, **who)
    for number in range(customers):
        values = {
            "dataAreaId": _COMPANIES[number % len(_COMPANIES)],
            "CustomerAccount": f"C{number:06d}",
            "OrganizationName": f"Customer {number}",
            "PartyType": "Organization",
            "CustomerGroupId": _GROUPS[number % len(_GROUPS)],
            "SalesCurrencyCode": _CURRENCIES[number % len(_CURRENCIES)][0],
            "CreditLimit": 1000 + number % 50,
            "AddressCity": "Seattle",
            "OnHoldStatus": "No",
        }
        store.insert("CustomersV3", values, **who)


def _settings(parts: dict[str, Any], state_dir: Path) -> Settings:
    def api(url: str, _plain_token_url: str, audience: str, token_url: str, ca_bundle: str) -> ApiSettings:
        # The pipeline gets its tokens through azure-identity: the HTTPS endpoint, trusting the sandbox CA.
        return ApiSettings(
            url=url,
            client_id="dualbus",
            client_secret=SecretStr(_CLIENTS["dualbus"]),
            token_url=token_url,
            ca_bundle=Path(ca_bundle),
            audience=audience,
        )

    return Settings(
        servicebus=ServiceBusSettings(connection_string=SecretStr(parts["connection_string"])),
        fo=api(*parts["fo"]),
        dataverse=api(*parts["dataverse"]),
        state_dir=state_dir,
    )


class _Observer:
    """Counts Dataverse rows as a separate application user, so it costs the pipeline none of its limits.

    Dataverse's ``$count`` stops at 5,000 rows (``sandbox/dataverse/reads.py`` cites the page), so the rows
    are counted as a client of the real service would: one tracked read of a table's ids, then its delta
    link, which answers only the rows created, changed or deleted since. A poll costs the twin what changed.
    """

    def __init__(self, url: str, token_url: str, audience: str, *_secure: str) -> None:
        form = {
            "grant_type": "client_credentials",
            "client_id": "observer",
            "client_secret": _CLIENTS["observer"],
            "scope": f"{audience}/.default",
        }
        token = httpx.post(token_url, data=form, timeout=30).json()["access_token"]
        self._http = httpx.AsyncClient(
            base_url=url + _DV_API, headers={"Authorization": f"Bearer {token}"}, timeout=60
        )
        self._ids: dict[str, set[str]] = {}
        self._delta_links: dict[str, str] = {}

    async def count(self, entity_set: str) -> int:
        """The rows the table holds; -1 when the twin could not be read this time."""
        try:
            await self._follow(entity_set)
        except (httpx.HTTPError, ValueError, KeyError):
            # A busy twin may drop the observer's connection: count again on the next round.
            return -1
        return len(self._ids[entity_set])

    async def _follow(self, entity_set: str) -> None:
        primary_id = TABLES[entity_set].primary_id
        ids = self._ids.setdefault(entity_set, set())
        # A link the service gave is followed as it is; the first read names the one column it needs.
        link: str | None = self._delta_links.get(entity_set) or f"{entity_set}?$select={primary_id}"
        headers = {"Prefer": "odata.track-changes, odata.maxpagesize=5000"}
        while link:
            response = await self._http.get(link, headers=headers)
            response.raise_for_status()
            body = orjson.loads(response.content)
            for row in body["value"]:
                if "reason" in row:  # a $deletedEntity entry names its row by "id"
                    ids.discard(row["id"])
                else:
                    ids.add(row[primary_id])
            if "@odata.deltaLink" in body:
                self._delta_links[entity_set] = body["@odata.deltaLink"]
            link = body.get("@odata.nextLink")

    async def wait_for(self, expected: dict[str, int], deadline: float) -> bool:
        while time.perf_counter() < deadline:
            counts = {name: await self.count(name) for name in expected}
            if all(counts[name] >= wanted for name, wanted in expected.items()):
                return True
            await asyncio.sleep(0.5)
        return False

    async def aclose(self) -> None:
        await self._http.aclose()


async def _sync(context: ProducerContext, entities: set[str]) -> SyncSummary:
    subset = replace(context, tables=[t for t in context.tables if t.name in entities])
    return await run_initial_sync(subset, page_size=5000)


class _RssWatch:
    """Samples the resident memory of this process (the consumers) and of the initial-sync process."""

    def __init__(self, every: float) -> None:
        self.every = every
        self.started = time.perf_counter()
        self.sync: psutil.Process | None = None
        self.samples: list[tuple[float, float, float | None]] = []

    async def run(self) -> None:
        me = psutil.Process()
        while True:
            sync_mb: float | None = None
            if self.sync is not None:
                with contextlib.suppress(psutil.Error):
                    sync_mb = round(self.sync.memory_info().rss / 2**20, 1)
            consumers_mb = round(me.memory_info().rss / 2**20, 1)
            self.samples.append((round(time.perf_counter() - self.started, 1), consumers_mb, sync_mb))
            await asyncio.sleep(self.every)

    def figures(self) -> dict[str, Any]:
        """The samples, and each process's peak in the first and the last third of its run (flat: alike)."""
        columns = {"consumers": [s[1] for s in self.samples], "initial_sync": [s[2] for s in self.samples]}
        peaks = {}
        for name, values in columns.items():
            seen = [v for v in values if v is not None]
            third = max(1, len(seen) // 3)
            peaks[name] = {
                "first_third_peak": max(seen[:third], default=None),
                "last_third_peak": max(seen[-third:], default=None),
            }
        return {
            "every_seconds": self.every,
            "seconds": [s[0] for s in self.samples],
            **columns,
            "peaks": peaks,
        }


async def _sync_process(settings: Settings, areas: str, watch: _RssWatch | None = None) -> None:
    """Run ``dualbus initial-sync --from fo --areas AREAS`` and wait for it; fail loudly if it fails."""
    command = ["-c", "from dualbus.cli import main; main()", "initial-sync", "--from", "fo", "--areas", areas]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *command,
        "--page-size",
        "5000",
        env=_environment(settings),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    if watch is not None:
        watch.sync = psutil.Process(process.pid)
    _, errors = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"initial-sync failed: {errors.decode()[-2000:]}")


def _environment(settings: Settings) -> dict[str, str]:
    """The DUALBUS_* variables that reproduce ``settings`` in a child process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUALBUS_")}
    assert settings.servicebus is not None  # noqa: S101 - built by _settings
    assert settings.servicebus.connection_string is not None  # noqa: S101
    env["DUALBUS_SERVICEBUS__CONNECTION_STRING"] = settings.servicebus.connection_string.get_secret_value()
    env["DUALBUS_STATE_DIR"] = str(settings.state_dir)
    env["DUALBUS_LOG_LEVEL"] = "WARNING"
    env["DUALBUS_PRODUCER__MAX_BATCH_BYTES"] = str(_BATCH_BYTES)
    assert settings.fo is not None  # noqa: S101
    env["DUALBUS_FO__URL"] = settings.fo.url
    assert settings.fo.client_id is not None  # noqa: S101
    assert settings.fo.client_secret is not None  # noqa: S101
    env["DUALBUS_FO__CLIENT_ID"] = settings.fo.client_id
    env["DUALBUS_FO__CLIENT_SECRET"] = settings.fo.client_secret.get_secret_value()
    env["DUALBUS_FO__TOKEN_URL"] = settings.fo.resolved_token_url
    env["DUALBUS_FO__CA_BUNDLE"] = str(settings.fo.ca_bundle)
    env["DUALBUS_FO__AUDIENCE"] = settings.fo.audience or settings.fo.url
    return env


async def _pipeline(
    settings: Settings, observer: _Observer, customers: int, limit: float, *, consume: bool, rss_every: float
) -> dict[str, Any]:
    stop = asyncio.Event()
    watch = _RssWatch(rss_every)
    watching = asyncio.create_task(watch.run())
    outcomes = {area: ConsumerMetrics(area=area, direction=Direction.TO_DATAVERSE.value) for area in _AREAS}
    consumers = [
        asyncio.create_task(
            run_consumer(
                settings, area, Direction.TO_DATAVERSE, concurrency=16, stop=stop, metrics=outcomes[area]
            )
        )
        for area in (_AREAS if consume else ())
    ]
    started = time.perf_counter()
    deadline = started + limit
    # Batches well under 256 KB: with consumers receiving, the emulator refused batches near the limit.
    options = ProducerOptions(max_batch_bytes=_BATCH_BYTES)
    async with open_context(Origin.FO, settings, options, areas=list(_AREAS)) as context:
        # Lookup targets first, applied before the customers that point at them (a barrier, not a race).
        first = await _sync(context, {"LegalEntities", "Currencies", "CustomerGroups"})
    targets = {"cdm_companies": 3, "transactioncurrencies": 3, "msdyn_customergroups": 9}
    ready = consume and await observer.wait_for(
        targets, min(deadline, time.perf_counter() + _BARRIER_SECONDS)
    )
    # The customers go through `dualbus initial-sync` in its own process, as an operator would run it.
    sync_started = time.perf_counter()
    await _sync_process(settings, "customer", watch)
    sync_seconds = time.perf_counter() - sync_started
    sync_cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    published_at = time.perf_counter()
    done = consume and await observer.wait_for({"accounts": customers}, deadline)
    finished = time.perf_counter()
    applied = await observer.count("accounts")
    stop.set()
    watching.cancel()
    failures = [repr(r) for r in await asyncio.gather(*consumers, return_exceptions=True) if r is not None]
    return {
        "lookup_targets_applied_first": ready,
        "records_published": first.records + customers,
        "publish_seconds": round(sync_seconds, 2),
        "publish_records_per_second": round(customers / sync_seconds, 1),
        "accounts_applied": applied,
        "completed": done,
        "total_seconds": round(finished - started, 2),
        "records_per_second": round((first.records + applied) / (finished - started), 1),
        "seconds_until_published": round(published_at - started, 2),
        "cpu_seconds_initial_sync_process": round(sync_cpu.ru_utime + sync_cpu.ru_stime, 1),
        "cpu_seconds_producer_of_lookups_and_consumers": _cpu_seconds(),
        "consumer_outcomes": {area: dict(metrics.counts) for area, metrics in outcomes.items()},
        "consumer_failures": [f for f in failures if "ConsumerMetrics" not in f],
        "rss_mb": watch.figures(),
    }


def main() -> None:
    """Run the benchmark once and print its figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=70_000)
    parser.add_argument("--limits", choices=("documented", "off"), default="documented")
    parser.add_argument("--time-limit", type=float, default=300.0)
    parser.add_argument("--publish-only", action="store_true", help="no consumers: measure the publish side")
    parser.add_argument("--rss-every", type=float, default=5.0, help="seconds between memory samples")
    args = parser.parse_args()
    machine = machine_figures()  # before anything of the benchmark runs
    spawn = multiprocessing.get_context("spawn")
    servers = [
        (_serve_emulator, ()),
        (_serve_fo, (args.customers,)),
        (_serve_dataverse, (args.limits == "documented",)),
    ]
    pipes, children = [], []
    for target, extra in servers:
        parent, child = multiprocessing.Pipe()
        process = spawn.Process(target=target, args=(child, *extra), daemon=True)
        process.start()
        pipes.append(parent)
        children.append(process)
    try:
        parts: dict[str, Any] = {}
        for pipe in pipes:
            parts.update(pipe.recv())
        with tempfile.TemporaryDirectory() as state:
            figures = asyncio.run(
                _run(
                    parts,
                    Path(state),
                    args.customers,
                    args.time_limit,
                    consume=not args.publish_only,
                    rss_every=args.rss_every,
                )
            )
    finally:
        cpu = []
        for pipe in pipes:
            pipe.send("stop")
            cpu.append(pipe.recv())
        for process in children:
            process.join(timeout=30)
    names = ("cpu_seconds_emulator", "cpu_seconds_fo_twin_with_its_seeding", "cpu_seconds_dataverse_twin")
    figures.update(zip(names, cpu, strict=True))
    figures.update({"customers": args.customers, "dataverse_limits": args.limits, "machine": machine})
    print(orjson.dumps(figures, option=orjson.OPT_INDENT_2).decode())


async def _run(
    parts: dict[str, Any], state: Path, customers: int, limit: float, *, consume: bool, rss_every: float
) -> dict[str, Any]:
    observer = _Observer(*parts["dataverse"])
    try:
        figures = await _pipeline(
            _settings(parts, state), observer, customers, limit, consume=consume, rss_every=rss_every
        )
    finally:
        await observer.aclose()
    figures["mode"] = "end-to-end" if consume else "publish side only (no consumers)"
    if not consume:
        for name in (
            "lookup_targets_applied_first",
            "accounts_applied",
            "completed",
            "records_per_second",
            "consumer_outcomes",
            "consumer_failures",
        ):
            figures.pop(name)
    return figures


if __name__ == "__main__":
    main()
