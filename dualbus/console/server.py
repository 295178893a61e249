"""Starting the console: its app wired to the real operations, served by uvicorn."""

from __future__ import annotations

import socket
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import uvicorn
from pydantic import SecretStr
from starlette.applications import Starlette
from urllib3.exceptions import InsecureRequestWarning

from dualbus.console import workflows
from dualbus.console.app import ConsoleConfig, Workflows, create_app
from dualbus.console.hosts import answered_hosts, check_allowed_hosts
from dualbus.console.operations import Operations
from dualbus.console.security import require_token
from dualbus.ops.audit import operator_name
from dualbus.shared.envelope import Origin
from dualbus.shared.errors import ConfigError
from dualbus.shared.settings import Settings, load_settings

__all__ = ["build_app", "serve"]


def build_app(
    settings: Settings | None = None,
    *,
    host: str = "127.0.0.1",
    token: SecretStr | None = None,
    metrics_dir: Path | None = None,
    allowed_hosts: Sequence[str] = (),
) -> Starlette:
    """The console over the namespace and APIs of ``settings`` (``DUALBUS_*`` when not given).

    It answers to the Host names of ``hosts.answered_hosts``: ``host``, the loopback names, ``allowed_hosts``.
    """
    require_token(host, token)
    check_allowed_hosts(allowed_hosts, with_token=token is not None)
    settings = settings or load_settings()
    _quiet_about_the_emulators_certificate(settings)
    operations = Operations(settings, metrics_dir=metrics_dir)
    flows = Workflows(
        reconcile=lambda job: workflows.run_reconcile(settings, job),
        repair=lambda records, job: workflows.run_repair(settings, records, job),
        sync=lambda origin, deep, job: workflows.run_sync(
            settings, Origin(origin), job, with_dependencies=deep
        ),
    )
    config = ConsoleConfig(
        areas=operations.topology.areas,
        operator=operator_name(),
        token=token,
        allowed_hosts=answered_hosts(host, with_token=token is not None, allowed=allowed_hosts),
        has_metrics=metrics_dir is not None and metrics_dir.is_dir(),
        secure_cookies=False,
    )
    return create_app(operations, flows, config)


def _quiet_about_the_emulators_certificate(settings: Settings) -> None:
    """Ignore urllib3's warning about the emulator's unverified certificate for the whole process.

    ``shared.bus_admin`` silences it inside ``warnings.catch_warnings``, which is not thread-safe: the console
    reads counts on several threads at once, and one leaving the block restores filters under another.
    Installed once before any of them, the filter is in every state they save and restore.
    """
    bus = settings.servicebus
    text = bus.connection_string.get_secret_value() if bus and bus.connection_string else ""
    if "usedevelopmentemulator=true" in text.replace(" ", "").lower():
        warnings.filterwarnings("ignore", category=InsecureRequestWarning)


def serve(
    *,
    host: str,
    port: int,
    token: SecretStr | None,
    metrics_dir: Path | None,
    allowed_hosts: Sequence[str] = (),
    listening: Callable[[str], None] = lambda _url: None,
) -> None:
    """Serve the console until stopped; ConfigError for a host without a token or a port in use.

    ``listening`` hears the console's URL once the port is bound (the port the system chose for 0).
    """
    app = build_app(host=host, token=token, metrics_dir=metrics_dir, allowed_hosts=allowed_hosts)
    sock = _bind(host, port)
    bound = sock.getsockname()[1]
    listening(f"http://[{host}]:{bound}/" if ":" in host else f"http://{host}:{bound}/")
    config = uvicorn.Config(app, log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sock.listen(128)
    return sock
