"""What the CLI's commands share: settings from the environment, and errors shown as one clear line."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console

from shared.errors import ConfigError, DualbusError
from shared.logs import redact
from shared.settings import ServiceBusSettings, load_settings

__all__ = ["console", "error_console", "reported_errors", "servicebus_settings"]

console = Console()
error_console = Console(stderr=True)


def servicebus_settings() -> ServiceBusSettings:
    """The Service Bus settings, or a ConfigError saying which variable to set."""
    settings = load_settings()
    if settings.servicebus is None:
        raise ConfigError(
            "Service Bus is not configured: set DUALBUS_SERVICEBUS__CONNECTION_STRING "
            "(or DUALBUS_SERVICEBUS__NAMESPACE to use Entra ID)"
        )
    return settings.servicebus


@contextmanager
def reported_errors() -> Iterator[None]:
    """Turn a dualbus error into a redacted message on stderr and exit code 1 (no traceback)."""
    try:
        yield
    except DualbusError as exc:
        error_console.print(f"[red]error:[/red] {redact(str(exc))}", highlight=False)
        raise typer.Exit(code=1) from exc
