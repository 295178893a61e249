"""What the CLI's commands share: settings from the environment, and errors shown as one clear line."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import typer
from rich.console import Console

from shared.errors import ConfigError, DualbusError
from shared.logs import redact
from shared.settings import ServiceBusSettings, load_settings

__all__ = ["console", "error_console", "format_age", "reported_errors", "servicebus_settings"]

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


def format_age(value: timedelta | None) -> str:
    """A short age for a table cell: ``45s``, ``12m``, ``3h``, ``2d``; ``-`` when unknown."""
    if value is None:
        return "-"
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
