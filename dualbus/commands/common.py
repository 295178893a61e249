"""What the CLI's commands share: settings from the environment, and errors shown as one clear line.

Exit codes, the same for every command: 2 for a usage error (a bad option, value or argument: click's
own, and ours raised as ``typer.BadParameter``), 1 for a failure (configuration, files, Service Bus, the
APIs). Either way the error is one line on stderr naming what to fix; never a traceback.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console
from typer.core import TyperGroup

from dualbus.ops.audit import AuditLog, audit_path
from dualbus.shared.errors import ConfigError, DualbusError
from dualbus.shared.logs import redact
from dualbus.shared.maps import load_maps
from dualbus.shared.settings import ServiceBusSettings, load_settings

__all__ = [
    "FAILURE",
    "USAGE",
    "GuardedGroup",
    "audit_log",
    "console",
    "error_console",
    "fail",
    "finite",
    "format_age",
    "known_areas",
    "reported_errors",
    "servicebus_settings",
    "split_values",
    "usage_error",
]

# No console markup: what the commands print holds the systems' own text (an OData error's "[/data/...]",
# a rule's or a reason's name), which rich would read as its tags and fail on or drop. Colour goes by style.
console = Console(markup=False)
error_console = Console(stderr=True, markup=False)

USAGE = 2
FAILURE = 1
# What typer's click raises for a group called without a command: it carries the group's help.
_NO_ARGUMENTS = "NoArgsIsHelpError"
# Set to see the traceback of an unexpected error (for a bug report).
_DEBUG_VARIABLE = "DUALBUS_DEBUG"


def servicebus_settings() -> ServiceBusSettings:
    """The Service Bus settings, or a ConfigError saying which variable to set."""
    settings = load_settings()
    if settings.servicebus is None:
        raise ConfigError(
            "Service Bus is not configured: set DUALBUS_SERVICEBUS__CONNECTION_STRING "
            "(or DUALBUS_SERVICEBUS__NAMESPACE to use Entra ID)"
        )
    return settings.servicebus


def audit_log() -> AuditLog:
    """The audit trail operators' commands write to (``DUALBUS_AUDIT_FILE``; see ``audit_path``), checked
    writable before the command acts (ConfigError)."""
    return AuditLog(audit_path(load_settings())).writable()


def _one_line(text: str) -> str:
    return " ".join(redact(text).split())


def fail(message: str, code: int = FAILURE) -> NoReturn:
    """Print ``error: message`` as one line on stderr and exit with ``code``."""
    typer.echo(f"error: {_one_line(message)}", err=True)
    raise typer.Exit(code)


def usage_error(message: str, option: str | None = None) -> typer.BadParameter:
    """A usage error (exit code 2), about ``option`` when one is to blame, to raise."""
    return typer.BadParameter(message, param_hint=f"'{option}'" if option else None)


def split_values(values: list[str] | None) -> list[str] | None:
    """An option given repeated or comma-separated, as one list; None when none was given."""
    parts = [part.strip() for value in values or [] for part in value.split(",") if part.strip()]
    return parts or None


def known_areas(areas: list[str] | None) -> list[str] | None:
    """``areas`` when the maps know each of them; a usage error naming the others and the known ones."""
    known = {table_map.area for table_map in load_maps()}
    unknown = sorted(set(areas or []) - known)
    if unknown:
        raise usage_error(
            f"unknown area(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}", "--areas"
        )
    return areas


def finite(value: float | None) -> float | None:
    """A typer callback for a float option: refuses inf and nan (``min=`` alone takes both, and a wait of
    inf or nan seconds fails deep inside the command), as a usage error."""
    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"{value} is not a finite number")
    return value


def _file_problem(exc: OSError) -> str:
    where = f"{exc.filename}: " if exc.filename else ""
    return f"{where}{exc.strerror or exc}"


@contextmanager
def reported_errors() -> Iterator[None]:
    """Turn a dualbus error or a file's OSError into one redacted line on stderr and exit code 1."""
    try:
        yield
    except DualbusError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(_file_problem(exc))


class GuardedGroup(TyperGroup):
    """The root command group: every error any command lets through ends as one line and an exit code."""

    def invoke(self, ctx: Any) -> Any:  # noqa: ANN401 - the Context of typer's own copy of click
        """Run the command; what it did not report itself is reported here, without a traceback."""
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise
        except DualbusError as exc:
            fail(str(exc))
        except OSError as exc:
            fail(_file_problem(exc))
        except Exception as exc:
            if os.environ.get(_DEBUG_VARIABLE):
                raise
            fail(f"unexpected {type(exc).__name__}: {exc} (set {_DEBUG_VARIABLE}=1 to see where)")

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,  # noqa: ANN401 - click's signature
    ) -> Any:  # noqa: ANN401 - click's signature
        """As click's, but a usage error is one line (``error: ... (see 'CMD --help')``), exit code 2."""
        try:
            result = super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        except typer.TyperException as exc:  # typer's click: usage errors and the like
            if not standalone_mode:
                raise
            context = getattr(exc, "ctx", None)
            if type(exc).__name__ == _NO_ARGUMENTS:
                # The group's help text: a bare group needs only to be told what it offers.
                typer.echo(exc.format_message(), err=True)
            else:
                hint = f" (see '{context.command_path} --help')" if context is not None else ""
                typer.echo(f"error: {_one_line(exc.format_message())}{hint}", err=True)
            sys.exit(exc.exit_code)
        except typer.Abort:
            if not standalone_mode:
                raise
            typer.echo("Aborted: nothing was changed.", err=True)
            sys.exit(FAILURE)
        if not standalone_mode:
            return result
        # click returns an Exit's code in this mode; a command's own return value is not an exit code.
        sys.exit(result if isinstance(result, int) else 0)


def format_age(value: timedelta | None) -> str:
    """A short age for a table cell: ``45s``, ``12m``, ``3h``, ``2d``; ``-`` when unknown."""
    if value is None:
        return "-"
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def writable_output(path: Path) -> None:
    """Refuse, before any work, an output file that cannot be written (ConfigError naming it)."""
    directory = path.parent if str(path.parent) else Path()
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory, not a file to write")
    if not directory.is_dir():
        raise ConfigError(f"{path}: the directory {directory} does not exist")
    if not os.access(path if path.exists() else directory, os.W_OK):
        raise ConfigError(f"{path}: cannot write there (permission denied)")
