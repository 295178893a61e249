"""``dualbus demo``: the whole pipeline on this machine, as separate processes, ending in a verdict."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from dualbus.commands.common import finite
from dualbus.demo import DataSize, DemoOptions, run_demo

__all__ = ["register"]


def demo(  # typer passes options by keyword
    *,
    duration: Annotated[
        float, typer.Option("--duration", min=1, callback=finite, help="Seconds of live changes.")
    ] = 60.0,
    rate: Annotated[
        float, typer.Option("--rate", min=0.1, callback=finite, help="Changes per second, both sides.")
    ] = 10.0,
    customers: Annotated[int, typer.Option("--customers", min=1, help="Customers to seed.")] = 100,
    vendors: Annotated[int, typer.Option("--vendors", min=0, help="Vendors to seed.")] = 20,
    products: Annotated[int, typer.Option("--products", min=0, help="Products to seed.")] = 50,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the data and of the changes.")] = 1,
    keep_running: Annotated[
        bool, typer.Option("--keep-running", help="Leave everything up after the report, until Ctrl-C.")
    ] = False,
    run_dir: Annotated[
        Path | None, typer.Option("--run-dir", help="Logs, metrics and summary.json go here (default: temp).")
    ] = None,
    headless: Annotated[
        bool, typer.Option("--headless", help="Plain progress lines instead of the live table.")
    ] = False,
) -> None:
    """Run F&O, Dataverse, Service Bus, producers and consumers locally; sync, change, reconcile, report.

    Exits 0 when both systems agree apart from changes that were rightly dead-lettered.

    Example: dualbus demo --duration 30 --rate 20 --run-dir demo-run --headless
    """
    directory = run_dir or Path(tempfile.mkdtemp(prefix="dualbus-demo-"))
    options = DemoOptions(
        run_dir=directory,
        duration=duration,
        rate=rate,
        seed=seed,
        size=DataSize(customers=customers, vendors=vendors, products=products),
        keep_running=keep_running,
        headless=headless,
    )
    code = run_demo(options, Console(markup=False))  # it prints records' keys and reasons: no markup
    if code:
        raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    """Add ``demo`` to the CLI."""
    app.command("demo")(demo)
