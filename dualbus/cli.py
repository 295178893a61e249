"""The ``dualbus`` command line: one entry point, one command group per job."""

from __future__ import annotations

from importlib import import_module

import typer

from dualbus.commands.common import GuardedGroup

__all__ = ["app", "main"]

app = typer.Typer(
    name="dualbus",
    help="Keep Dynamics 365 F&O and Dataverse in step through Azure Service Bus.",
    no_args_is_help=True,
    add_completion=False,
    # Every error, ours or click's, is one line with exit code 2 (usage) or 1 (failure): see GuardedGroup.
    cls=GuardedGroup,
    pretty_exceptions_enable=False,
)

# Each module registers its commands; add a line here for a new group.
_COMMAND_MODULES = (
    "dualbus.commands.topology",
    "dualbus.commands.dlq",
    "dualbus.commands.control",
    "dualbus.commands.alerts",
    "dualbus.commands.status",
    "dualbus.commands.infra",
    "dualbus.commands.consume",
    "dualbus.commands.reconcile",
    "dualbus.commands.sandbox",
    "dualbus.commands.demo",
    "dualbus.commands.produce",
    "dualbus.commands.console",
)


@app.command()
def version() -> None:
    """Print dualbus's version.

    Example: dualbus version
    """
    from dualbus import __version__  # noqa: PLC0415 - keeps start-up of other commands light

    typer.echo(__version__)


for _module in _COMMAND_MODULES:
    import_module(_module).register(app)


def main() -> None:
    """Run the command line."""
    app()
