"""Starting the demo's processes, each as it would run in production: its own command, environment and log.

The emulator and the twins come first; then one consumer per area and direction (all at once, so their
start-up overlaps), the two producers, and the F&O data events bound to the F&O producer's webhook.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dualbus.demo.environment import PIPELINE_CLIENT, Endpoints, child_environment, pipeline_environment
from dualbus.demo.errors import DemoError
from dualbus.demo.processes import ChildProcess, ProcessGroup, free_port
from dualbus.demo.workload import DataSize, api_client
from dualbus.sandbox.fo.events import MAX_PROCESSING_THREADS
from dualbus.shared.http import HttpError, request
from dualbus.shared.maps import area_layers, load_maps
from dualbus.shared.topology import Direction, default_topology

__all__ = [
    "TOPOLOGY_APPLY",
    "Launcher",
    "cli_command",
    "consumer_name",
    "initial_sync_layers",
]

# ``dualbus`` as a module invocation: works wherever the package is importable, installed script or not.
_CLI = "import sys; from dualbus.cli import main; sys.argv[0] = 'dualbus'; main()"
_START_SECONDS = 60.0
_POLL_SECONDS = 0.1
# The one-off child that gives the bare emulator its topology (it exits when done).
TOPOLOGY_APPLY = "topology-apply"
# Producers and consumers stop before the emulator and the twins they talk to.
_PIPELINE = 1
# What a run writes into its directory (and nothing else there is touched).
_RUN_FILES = ("sandbox.json", "sandbox.partial", "summary.json")
_RUN_DIRECTORIES = ("logs", "metrics", "state")
# Left in a run directory by the run that made it: only then are the names above a previous run's to clear.
RUN_MARK = ".dualbus-demo-run"


def cli_command(*args: str) -> list[str]:
    """The command line that runs ``dualbus ARGS`` with this interpreter."""
    return [sys.executable, "-c", _CLI, *args]


def consumer_name(area: str, direction: str) -> str:
    """A consumer process's name, also the name of its log and metrics files."""
    return f"consumer-{area}-{direction}"


@dataclass(slots=True)
class Launcher:
    """Starts the processes of one demo run into ``group``; the run directory holds their files."""

    group: ProcessGroup
    run_dir: Path
    parent_env: Mapping[str, str]
    # A fresh secret per run: the F&O twin's data events endpoint sends it, the F&O producer checks it.
    webhook_key: str = field(default_factory=lambda: secrets.token_urlsafe(24))

    @classmethod
    def create(cls, run_dir: Path) -> Launcher:
        """A launcher whose children log to ``<run_dir>/logs``; a previous run's files there are removed."""
        _clear_previous_run(run_dir)
        return cls(ProcessGroup(run_dir / "logs"), run_dir, dict(os.environ))

    def start_emulator(self, *, data_dir: Path | None = None) -> str:
        """Start a bare emulator and give it the topology with ``dualbus topology apply``, as a namespace
        on Azure gets it; returns the emulator's connection string.

        With ``data_dir`` it keeps its messages and entities there, so that ``restart_emulator`` can start it
        again after it was killed, on the same port, without losing any.
        """
        command = [sys.executable, "-m", "dualbus.sandbox.servicebus", "--port", "0"]
        if data_dir is not None:
            command += ["--data-dir", str(data_dir)]
        child = self.group.start("emulator", command, child_environment(self.parent_env))
        connection_string = child.wait_for(r"^(Endpoint=\S+)$", _START_SECONDS).group(1)
        env = child_environment(self.parent_env)
        env["DUALBUS_SERVICEBUS__CONNECTION_STRING"] = connection_string
        apply = self.group.start(TOPOLOGY_APPLY, cli_command("topology", "apply"), env)
        if apply.wait(timeout=_START_SECONDS) != 0:
            raise DemoError(f"applying the topology to the emulator failed; see {apply.log_path}")
        return connection_string

    def restart_emulator(self, child: ChildProcess, port: int) -> ChildProcess:
        """Start the exited emulator ``child`` again on the ``port`` it had; returns it once it listens."""
        command = list(child.command)
        command[command.index("--port") + 1] = str(port)
        restarted = self.group.restart(child, command=command)
        restarted.wait_for(r"^(Endpoint=\S+)$", _START_SECONDS)
        return restarted

    def start_twins(self, *, seed: int, size: DataSize) -> ChildProcess:
        """Start ``dualbus sandbox`` (both twins, seeded); ``twins_info`` waits for where they listen."""
        info = self.run_dir / "sandbox.json"
        args = ["sandbox", "--seed", str(seed), "--info-file", str(info)]
        args += ["--customers", str(size.customers), "--vendors", str(size.vendors)]
        args += ["--products", str(size.products)]
        # F&O's event processing at its documented most, so that the pipeline meets events out of order.
        args += ["--fo-event-threads", str(MAX_PROCESSING_THREADS)]
        return self.group.start("sandbox", cli_command(*args), child_environment(self.parent_env))

    def twins_info(self, child: ChildProcess) -> dict[str, object]:
        """The twins' URLs and credentials, once the sandbox wrote them."""
        path = self.run_dir / "sandbox.json"
        deadline = time.monotonic() + _START_SECONDS * 2  # seeding takes a while on a busy machine
        while not path.exists():
            if not child.running():
                raise DemoError(
                    f"the sandbox exited with code {child.process.returncode}; see {child.log_path}"
                )
            if time.monotonic() > deadline:
                raise DemoError(f"the sandbox was not ready in time; see {child.log_path}")
            time.sleep(_POLL_SECONDS)
        info: dict[str, object] = json.loads(path.read_text())
        return info

    def start_consumers(self, endpoints: Endpoints, concurrency: int | None) -> list[tuple[str, str]]:
        """One consumer per area and direction, all started at once; returns the routes."""
        routes = []
        for topic, subscription in default_topology().routes():
            target = subscription.direction.target.value
            name = consumer_name(topic.area, subscription.name)
            command = [sys.executable, "-m", "dualbus.consumers", topic.area, "--to", target]
            if concurrency is not None:
                command += ["--concurrency", str(concurrency)]
            self.group.start(name, command, self._env(endpoints, name), stage=_PIPELINE)
            routes.append((topic.area, subscription.name))
        return routes

    def start_producers(self, endpoints: Endpoints) -> int:
        """Both producers, F&O's taking data events on a webhook; returns the webhook's port when ready."""
        port = free_port()
        fo_extra = {
            "DUALBUS_PRODUCER__FO_EVENTS": "webhook",
            "DUALBUS_PRODUCER__WEBHOOK_PORT": str(port),
            # The key the data events endpoint sends as ?code=, as a Dataverse webhook's WebhookKey does.
            "DUALBUS_PRODUCER__FO_WEBHOOK_KEY": self.webhook_key,
        }
        fo = self._start_producer(endpoints, "fo", fo_extra)
        dataverse = self._start_producer(endpoints, "dataverse", {})
        _wait_http(f"http://127.0.0.1:{port}/healthz", fo)
        dataverse.wait_for("producer started", _START_SECONDS)
        return port

    def bind_data_events(self, endpoints: Endpoints, webhook_port: int) -> list[str]:
        """Activate F&O data events for the entities the F&O producer handles, sent to its webhook."""
        health = request("GET", f"http://127.0.0.1:{webhook_port}/healthz", timeout=10).json()
        entities = sorted(health.get("entities", []))
        secret = endpoints.clients[PIPELINE_CLIENT]
        with api_client(endpoints.fo, endpoints.fo["url"], PIPELINE_CLIENT, secret) as fo:
            body = {
                "kind": "webhook",
                "url": f"http://127.0.0.1:{webhook_port}/fo/events",
                "code": self.webhook_key,
                "entities": entities,
            }
            response = fo.post("/_sandbox/data-events", json=body)
        if not response.is_success:
            raise DemoError(f"the F&O twin refused the data events endpoint: {response.text}")
        return entities

    def start_initial_sync(self, endpoints: Endpoints, areas: Sequence[str], index: int) -> ChildProcess:
        """``dualbus initial-sync --from fo`` for some areas, as its own process."""
        name = f"initial-sync-fo-{index}"
        command = cli_command("initial-sync", "--from", "fo", "--areas", ",".join(areas))
        env = self._env(endpoints, name, client_id=endpoints.producer_client)
        return self.group.start(name, command, env, stage=_PIPELINE)

    def _start_producer(self, endpoints: Endpoints, origin: str, extra: Mapping[str, str]) -> ChildProcess:
        name = f"producer-{origin}"
        variables = {"DUALBUS_PRODUCER__POLL_INTERVAL_SECONDS": "1", **extra}
        command = [sys.executable, "-m", "dualbus.producers", "--from", origin]
        env = self._env(endpoints, name, variables, client_id=endpoints.producer_client)
        return self.group.start(name, command, env, stage=_PIPELINE)

    def _env(
        self,
        endpoints: Endpoints,
        name: str,
        extra: Mapping[str, str] | None = None,
        *,
        client_id: str = PIPELINE_CLIENT,
    ) -> dict[str, str]:
        return pipeline_environment(
            self.parent_env, endpoints, run_dir=self.run_dir, name=name, extra=extra, client_id=client_id
        )


def _clear_previous_run(run_dir: Path) -> None:
    """Remove what an earlier run left: its metrics would add up with the new ones, its info file mislead.

    Only in a directory a run made (it holds ``RUN_MARK``): ``--run-dir .`` in a project that has a
    ``logs`` or ``state`` folder of its own deleted it. Such a directory is refused (DemoError).
    """
    present = [name for name in (*_RUN_FILES, *_RUN_DIRECTORIES) if (run_dir / name).exists()]
    if present and not (run_dir / RUN_MARK).exists():
        raise DemoError(
            f"{run_dir} holds {', '.join(present)}, which no demo run of this release made: give --run-dir "
            "a new or empty directory (a run clears only what a previous run left there; remove a run "
            "directory an earlier release made)"
        )
    for name in _RUN_FILES:
        (run_dir / name).unlink(missing_ok=True)
    for name in _RUN_DIRECTORIES:
        shutil.rmtree(run_dir / name, ignore_errors=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / RUN_MARK).touch()


def initial_sync_layers() -> list[list[str]]:
    """The areas F&O sends to Dataverse, in dependency layers."""
    synced = {
        topic.area for topic, sub in default_topology().routes() if sub.direction is Direction.TO_DATAVERSE
    }
    return area_layers(load_maps(), synced)


def _wait_http(url: str, child: ChildProcess) -> None:
    deadline = time.monotonic() + _START_SECONDS
    while time.monotonic() < deadline:
        if not child.running():
            raise DemoError(f"{child.name} exited with code {child.process.returncode}; see {child.log_path}")
        try:
            if request("GET", url, timeout=1).is_success:
                return
        except HttpError:
            pass  # not listening yet
        time.sleep(_POLL_SECONDS)
    raise DemoError(f"{child.name} did not answer on {url} in time; see {child.log_path}")
