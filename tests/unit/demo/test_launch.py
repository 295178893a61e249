"""How the demo lays out its processes: dependency layers, environments and commands."""

from __future__ import annotations

import dataclasses
import json
import subprocess
from pathlib import Path

import pytest

from dualbus import __version__
from dualbus.demo.environment import (
    PIPELINE_CLIENT,
    PRODUCER_CLIENT,
    Endpoints,
    child_environment,
    pipeline_environment,
)
from dualbus.demo.errors import DemoError
from dualbus.demo.launch import Launcher, cli_command, consumer_name, initial_sync_layers
from dualbus.sandbox.identity import user_id_for
from dualbus.shared.maps import dependency_layers

TWIN = {
    "url": "http://127.0.0.1:1",
    "token_url": "http://127.0.0.1:1/t/oauth2/v2.0/token",
    "authority": "https://127.0.0.1:3",
    "tenant": "t",
    "ca_bundle": "/nonexistent/ca.pem",
    "audience": "https://a",
    "scope": "s",
}
ENDPOINTS = Endpoints(
    connection_string="Endpoint=sb://127.0.0.1:2;SharedAccessKeyName=k;SharedAccessKey=s",
    fo=TWIN,
    dataverse={**TWIN, "api_url": "http://127.0.0.1:1/api/data/v9.2/"},
    clients={"dualbus": "dualbus-secret", "workload": "workload-secret"},
)


def test_layers_put_dependencies_first() -> None:
    """An area comes in a later layer than every area it looks up."""
    layers = dependency_layers({"customer": {"company", "currency"}, "company": set(), "currency": set()})
    assert layers == [["company", "currency"], ["customer"]]


def test_a_cycle_still_ends() -> None:
    """Areas that look each other up end up together in the last layer instead of looping forever."""
    assert dependency_layers({"a": {"b"}, "b": {"a"}, "c": set()}) == [["c"], ["a", "b"]]


def test_initial_sync_sends_companies_before_customers() -> None:
    """With the project's maps, companies and currencies sync before the customers that look them up."""
    layers = initial_sync_layers()
    position = {area: index for index, layer in enumerate(layers) for area in layer}
    assert position["company"] < position["customer"]
    assert position["currency"] < position["vendor"]


def test_child_environment_drops_real_settings() -> None:
    """Settings for a real environment in the caller's shell never reach a demo process."""
    env = child_environment(
        {"PATH": "/bin", "DUALBUS_FO__URL": "https://prod", "OTEL_TRACES_EXPORTER": "otlp"}
    )
    assert env["PATH"] == "/bin"
    assert not any(k.startswith(("DUALBUS_", "OTEL_")) for k in env)


def test_pipeline_environment_points_at_the_sandbox(tmp_path: Path) -> None:
    """A producer or consumer gets the emulator, both twins, its own metrics file and dualbus's echo users."""
    env = pipeline_environment(
        {"DUALBUS_FO__URL": "https://prod"}, ENDPOINTS, run_dir=tmp_path, name="consumer-x"
    )
    assert env["DUALBUS_SERVICEBUS__CONNECTION_STRING"] == ENDPOINTS.connection_string
    assert env["DUALBUS_FO__URL"] == TWIN["url"]
    assert env["DUALBUS_DATAVERSE__CLIENT_SECRET"] == "dualbus-secret"
    # Tokens come from the twin's HTTPS authority, trusted through the sandbox's CA file.
    assert env["DUALBUS_FO__AUTHORITY_HOST"] == TWIN["authority"]
    assert env["DUALBUS_FO__TENANT_ID"] == TWIN["tenant"]
    assert env["DUALBUS_FO__CA_BUNDLE"] == TWIN["ca_bundle"]
    assert env["DUALBUS_METRICS_FILE"] == str(tmp_path / "metrics" / "consumer-x.json")
    assert env["OTEL_METRICS_EXPORTER"] == "jsonfile"
    assert json.loads(env["DUALBUS_PRODUCER__OWN_USERS"]) == ["dualbus", user_id_for("dualbus")]


def test_endpoints_read_the_sandbox_info_file() -> None:
    """The JSON that dualbus sandbox --info-file writes is what the demo reads back."""
    info = {"fo": TWIN, "dataverse": ENDPOINTS.dataverse, "clients": dict(ENDPOINTS.clients), "seeded": {}}
    assert Endpoints.from_info(ENDPOINTS.connection_string, info) == ENDPOINTS


def test_cli_command_runs_dualbus() -> None:
    """The command line a child gets runs the dualbus CLI with this interpreter."""
    result = subprocess.run(cli_command("version"), capture_output=True, text=True, timeout=60, check=True)  # noqa: S603 - our own CLI
    assert result.stdout.strip() == __version__
    assert consumer_name("customer", "to-fo") == "consumer-customer-to-fo"


def test_a_new_run_forgets_the_previous_one(tmp_path: Path) -> None:
    """Metrics, state and the twins' info file of an earlier run in the same directory are removed."""
    Launcher.create(tmp_path)  # the earlier run
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "consumer-customer-to-fo.json").write_text("{}")
    (tmp_path / "sandbox.json").write_text("{}")
    (tmp_path / "notes.txt").write_text("mine")
    launcher = Launcher.create(tmp_path)
    assert not (tmp_path / "metrics").exists()
    assert not (tmp_path / "sandbox.json").exists()
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert launcher.group.log_dir == tmp_path / "logs"


def test_a_directory_no_run_made_is_refused_and_left_as_it_is(tmp_path: Path) -> None:
    """``--run-dir .`` in a project with a ``logs`` folder of its own deleted that folder."""
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "app.log").write_text("theirs")
    with pytest.raises(DemoError, match="logs, which no demo run of this release made"):
        Launcher.create(tmp_path)
    assert (tmp_path / "logs" / "app.log").read_text() == "theirs"


def test_producers_read_as_their_own_application_where_the_sandbox_has_it(tmp_path: Path) -> None:
    """The producers' polls count against a user of their own, not the consumers' (docs/operations.md);
    the echo users stay the consumers', who write. A sandbox without that application keeps them on the
    pipeline's."""
    with_producer = dataclasses.replace(
        ENDPOINTS, clients={**ENDPOINTS.clients, PRODUCER_CLIENT: "producer-secret"}
    )
    env = pipeline_environment(
        {},
        with_producer,
        run_dir=tmp_path,
        name="producer-dataverse",
        client_id=with_producer.producer_client,
    )
    assert env["DUALBUS_DATAVERSE__CLIENT_ID"] == env["DUALBUS_FO__CLIENT_ID"] == PRODUCER_CLIENT
    assert env["DUALBUS_DATAVERSE__CLIENT_SECRET"] == "producer-secret"
    assert json.loads(env["DUALBUS_PRODUCER__OWN_USERS"]) == [PIPELINE_CLIENT, user_id_for(PIPELINE_CLIENT)]
    assert ENDPOINTS.producer_client == PIPELINE_CLIENT


class _RecordingGroup:
    """Notes what would be started, with which environment."""

    def __init__(self) -> None:
        self.started: dict[str, tuple[object, dict[str, str]]] = {}

    def start(self, name: str, command: object, env: dict[str, str], **_: object) -> str:
        self.started[name] = (command, env)
        return name


def test_an_initial_sync_reads_as_the_producers_application(tmp_path: Path) -> None:
    with_producer = dataclasses.replace(
        ENDPOINTS, clients={**ENDPOINTS.clients, PRODUCER_CLIENT: "producer-secret"}
    )
    group = _RecordingGroup()
    launcher = Launcher(group, tmp_path, {})  # type: ignore[arg-type]
    launcher.start_initial_sync(with_producer, ["customer"], 0)
    ((command, env),) = group.started.values()
    assert "initial-sync" in command  # type: ignore[operator]
    assert env["DUALBUS_FO__CLIENT_ID"] == PRODUCER_CLIENT
