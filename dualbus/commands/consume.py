"""``dualbus consume AREA --to dataverse|fo``: run one area's consumer for one direction."""

from __future__ import annotations

import typer

from dualbus.consumers._cli import consume

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add the ``consume`` command to the CLI."""
    app.command("consume")(consume)
