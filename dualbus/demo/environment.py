"""The environment each demo process gets: its own settings, as a production deployment would set them.

Producers and consumers read nothing but ``DUALBUS_*`` and ``OTEL_*`` variables, so the demo hands each one
exactly those, pointing at the emulator and the twins; whatever the person running the demo has set for a
real environment is left out, so the demo never writes to one by accident.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dualbus.sandbox.fo import WORKLOAD_CLIENTS
from dualbus.sandbox.identity import user_id_for

__all__ = [
    "PIPELINE_CLIENT",
    "PRODUCER_CLIENT",
    "WORKLOAD_CLIENT",
    "Endpoints",
    "child_environment",
    "pipeline_environment",
]

# The application the consumers write as, the one the producers read as, and the one the workload makes
# user edits as. The producers have a user of their own, as docs/operations.md advises: Dataverse limits
# each user's requests (6,000 per web server in 5 minutes), and the producer's change polls would spend
# the consumers' share.
PIPELINE_CLIENT = "dualbus"
PRODUCER_CLIENT = "dualbus-producer"
WORKLOAD_CLIENT = WORKLOAD_CLIENTS[0]
_DROPPED_PREFIXES = ("DUALBUS_", "OTEL_")
_METRIC_EXPORT_MILLISECONDS = "1000"


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Where the emulator and the twins listen, and the credentials they accept."""

    connection_string: str
    fo: Mapping[str, str]
    dataverse: Mapping[str, str]
    clients: Mapping[str, str]

    @classmethod
    def from_info(cls, connection_string: str, info: Mapping[str, Any]) -> Endpoints:
        """Read the JSON that ``dualbus sandbox --info-file`` writes."""
        return cls(
            connection_string=connection_string,
            fo=dict(info["fo"]),
            dataverse=dict(info["dataverse"]),
            clients=dict(info["clients"]),
        )

    @property
    def workload_clients(self) -> tuple[str, ...]:
        """The people's applications the sandbox has, the workload's edits made as them (one started by an
        older dualbus has only the first)."""
        return tuple(client for client in WORKLOAD_CLIENTS if client in self.clients)

    @property
    def producer_client(self) -> str:
        """The application the producers read as: their own where the sandbox has it (one started by an
        older dualbus has only the pipeline's)."""
        return PRODUCER_CLIENT if PRODUCER_CLIENT in self.clients else PIPELINE_CLIENT

    def api_variables(self, client_id: str = PIPELINE_CLIENT) -> dict[str, str]:
        """``DUALBUS_FO__*`` and ``DUALBUS_DATAVERSE__*`` for one application."""
        variables: dict[str, str] = {}
        for prefix, twin in (("DUALBUS_FO__", self.fo), ("DUALBUS_DATAVERSE__", self.dataverse)):
            variables |= {
                f"{prefix}URL": twin["url"],
                f"{prefix}CLIENT_ID": client_id,
                f"{prefix}CLIENT_SECRET": self.clients[client_id],
                # azure-identity asks the twin's HTTPS authority, trusting the sandbox's CA.
                f"{prefix}AUTHORITY_HOST": twin["authority"],
                f"{prefix}TENANT_ID": twin["tenant"],
                f"{prefix}CA_BUNDLE": twin["ca_bundle"],
                f"{prefix}AUDIENCE": twin["audience"],
            }
        return variables


def child_environment(parent: Mapping[str, str]) -> dict[str, str]:
    """The parent's environment without any dualbus or OpenTelemetry setting."""
    env = {k: v for k, v in parent.items() if not k.startswith(_DROPPED_PREFIXES)}
    env["PYTHONUNBUFFERED"] = "1"  # log lines reach the log file as they happen
    return env


def pipeline_environment(
    parent: Mapping[str, str],
    endpoints: Endpoints,
    *,
    run_dir: Path,
    name: str,
    extra: Mapping[str, str] | None = None,
    client_id: str = PIPELINE_CLIENT,
) -> dict[str, str]:
    """Everything one producer or consumer process reads, signed in as ``client_id``, with its metrics kept
    in ``metrics/<name>.json``."""
    env = child_environment(parent)
    env |= endpoints.api_variables(client_id)
    env |= {
        "DUALBUS_SERVICEBUS__CONNECTION_STRING": endpoints.connection_string,
        "DUALBUS_STATE_DIR": str(run_dir / "state"),
        "DUALBUS_LOG_FORMAT": "text",
        # What dualbus writes is recorded as its client id by F&O and as that client's user id by Dataverse:
        # both mark an echo, a change that must not travel back.
        "DUALBUS_PRODUCER__OWN_USERS": json.dumps([PIPELINE_CLIENT, user_id_for(PIPELINE_CLIENT)]),
        "OTEL_SERVICE_NAME": f"dualbus-{name}",
        "OTEL_METRICS_EXPORTER": "jsonfile",
        "DUALBUS_METRICS_FILE": str(run_dir / "metrics" / f"{name}.json"),
        "OTEL_METRIC_EXPORT_INTERVAL": _METRIC_EXPORT_MILLISECONDS,
    }
    env |= dict(extra or {})
    return env
