"""``dualbus console``: the operator's web console, on loopback unless given a token."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from pydantic import SecretStr

from dualbus.commands.common import console as out
from dualbus.commands.common import reported_errors, usage_error
from dualbus.shared.errors import ConfigError
from dualbus.shared.logs import RedactingFilter, register_secret
from dualbus.shared.settings import load_settings

__all__ = ["register"]

_REDACTING = RedactingFilter()


def console_command(
    *,
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on; beyond loopback needs --token.")
    ] = ("127.0.0.1"),
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port to listen on.")] = 8080,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar="DUALBUS_CONSOLE_TOKEN",
            help="Required to sign in (16+ characters).",
            show_default=False,
        ),
    ] = None,
    allowed_hosts: Annotated[
        list[str] | None,
        typer.Option(
            "--allowed-host",
            envvar="DUALBUS_CONSOLE_ALLOWED_HOSTS",
            help="With --token: a name browsers reach the console by, e.g. behind a proxy (repeatable; "
            "* for any). Other names are refused; --host and the loopback names are always answered.",
            show_default=False,
        ),
    ] = None,
    metrics_dir: Annotated[
        Path | None,
        typer.Option(
            "--metrics-dir",
            envvar="DUALBUS_METRICS_DIR",
            help="The producers' and consumers' metrics files (the demo's RUN_DIR/metrics).",
        ),
    ] = None,
) -> None:
    """Open the operator's console in a browser: routes, dead letters, reconcile, initial sync, audit.

    Works from the same DUALBUS_* settings as the other commands, against Azure or the emulator.

    Example: dualbus console --metrics-dir demo-run/metrics
    """
    from dualbus.console import serve  # noqa: PLC0415 - keeps start-up of other commands light
    from dualbus.console.hosts import check_allowed_hosts  # noqa: PLC0415 - as above
    from dualbus.console.security import require_token  # noqa: PLC0415 - as above

    secret = SecretStr(token) if token else None
    # A weak token, or a host beyond loopback without one, is a bad command line (exit 2), as a bad
    # --allowed-host is.
    try:
        require_token(host, secret)
    except ConfigError as exc:
        raise usage_error(str(exc), "--token") from exc
    try:
        check_allowed_hosts(allowed_hosts or [], with_token=bool(token))
    except ConfigError as exc:
        raise usage_error(str(exc), "--allowed-host") from exc
    with reported_errors():
        _redacted_logs(secret)
        serve(
            host=host,
            port=port,
            token=secret,
            metrics_dir=metrics_dir,
            allowed_hosts=allowed_hosts or (),
            listening=lambda url: out.print(f"dualbus console on {url} (Ctrl-C stops it)", highlight=False),
        )


def _redacted_logs(token: SecretStr | None) -> None:
    """The console's log lines (a failed action's traceback) are masked, with the token and the settings'
    secrets known, as every other command's are.

    The console sets up no logging of its own (uvicorn's loggers are uvicorn's): its warnings and errors
    reach stderr through Python's last-resort handler, which gets the redacting filter.
    """
    for secret in (token, *load_settings().secrets()):
        register_secret(secret)
    if logging.lastResort is not None:
        logging.lastResort.addFilter(_REDACTING)  # once: a filter already there is not added again


def register(app: typer.Typer) -> None:
    """Add ``console`` to the CLI."""
    app.command("console")(console_command)
