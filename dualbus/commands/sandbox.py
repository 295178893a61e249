"""``dualbus emulator`` and ``dualbus sandbox``: the local Service Bus emulator and the two API twins."""

from __future__ import annotations

import json
import signal
import socket
import tempfile
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from dualbus.commands.common import FAILURE, fail, finite
from dualbus.sandbox.fo.events import MAX_PROCESSING_THREADS
from dualbus.sandbox.servicebus.__main__ import main as emulator_main
from dualbus.sandbox.workload import StreamConfig, run_sandbox
from dualbus.shared.render import render_emulator_config
from dualbus.shared.topology import default_topology

__all__ = ["register"]


def emulator(
    *,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="An emulator Config.json (default: rendered from the topology)."),
    ] = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port; 0 picks a free one.")] = 5672,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Keep messages in SQLite here across restarts.")
    ] = None,
) -> None:
    """Run the Service Bus emulator until Ctrl-C; prints the connection string to use.

    Example: dualbus emulator --port 5672 --data-dir .dualbus/bus
    """
    with tempfile.TemporaryDirectory(prefix="dualbus-emulator-") as scratch:
        if config is None:
            config = Path(scratch) / "Config.json"
            config.write_text(json.dumps(render_emulator_config(default_topology()), indent=2))
        argv = ["--config", str(config), "--host", host, "--port", str(port)]
        if data_dir is not None:
            argv += ["--data-dir", str(data_dir)]
        code = emulator_main(argv)
    if code:
        # The emulator said why on stderr; the arguments are ours, so any refusal is a failure, not usage.
        raise typer.Exit(FAILURE)


def _free_port(option: str, port: int) -> None:
    """Refuse a port something else listens on, naming the option (before seeding anything)."""
    if port == 0:
        return
    with socket.socket() as probe:
        # As the twins' server binds: a port left in TIME_WAIT is free, one somebody listens on is not.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            fail(f"cannot listen on 127.0.0.1:{port} ({option}): {exc.strerror}; choose another port, or 0")


def _parse_clients(values: list[str] | None) -> dict[str, str] | None:
    if not values:
        return None
    clients: dict[str, str] = {}
    for value in values:
        client_id, separator, secret = value.partition("=")
        if not separator or not client_id or not secret:
            # Not echoed: what was given is likely the secret itself, in the wrong shape.
            raise typer.BadParameter("--client takes ID=SECRET: a client id, '=', then its secret")
        clients[client_id] = secret
    return clients


def _stop_on_signal() -> threading.Event:
    """An event that SIGTERM or SIGINT (Ctrl-C) sets."""
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    return stop


def _echo(text: str) -> None:
    typer.echo(text, nl=False)


def sandbox(  # typer passes options by keyword
    *,
    fo_port: Annotated[int, typer.Option("--fo-port", min=0, max=65535, help="F&O twin port; 0: free.")] = 0,
    dataverse_port: Annotated[
        int, typer.Option("--dataverse-port", min=0, max=65535, help="Dataverse twin port; 0: free.")
    ] = 0,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the generated data.")] = 1,
    customers: Annotated[int, typer.Option("--customers", min=0, help="Customers to seed.")] = 100,
    vendors: Annotated[int, typer.Option("--vendors", min=0, help="Vendors to seed.")] = 20,
    products: Annotated[int, typer.Option("--products", min=0, help="Products to seed.")] = 50,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Keep both twins' data in SQLite here.")
    ] = None,
    clients: Annotated[
        list[str] | None,
        typer.Option(
            "--client", help="Register an application as ID=SECRET (repeatable; default: built-in)."
        ),
    ] = None,
    rate: Annotated[
        float,
        typer.Option(
            "--rate", min=0, callback=finite, help="Changes per second to make after seeding; 0: none."
        ),
    ] = 0.0,
    duration: Annotated[
        float, typer.Option("--duration", min=0, callback=finite, help="Seconds of changes to make.")
    ] = 60.0,
    info_file: Annotated[
        Path | None, typer.Option("--info-file", help="Also write the URLs and credentials here as JSON.")
    ] = None,
    fo_event_threads: Annotated[
        int,
        typer.Option(
            "--fo-event-threads",
            min=1,
            max=MAX_PROCESSING_THREADS,
            help="F&O's business events processing threads; above 1 a record's events may overtake.",
        ),
    ] = 1,
) -> None:
    """Start and seed the F&O and Dataverse twins, print how to reach them, serve until Ctrl-C.

    Example: dualbus sandbox --customers 500 --rate 10 --duration 60
    """
    for option, port in (("--fo-port", fo_port), ("--dataverse-port", dataverse_port)):
        _free_port(option, port)
    stream = _stream_config(seed, rate, duration) if rate > 0 else None
    run_sandbox(
        fo_port=fo_port,
        dataverse_port=dataverse_port,
        seed=seed,
        customers=customers,
        vendors=vendors,
        products=products,
        data_dir=data_dir,
        clients=_parse_clients(clients),
        info_file=info_file,
        fo_event_threads=fo_event_threads,
        stream=stream,
        stop=_stop_on_signal(),
        write=_echo,
    )


def _stream_config(seed: int, rate: float, duration: float) -> StreamConfig:
    # The plan is capped by max_changes as well: let rate x duration decide.
    return StreamConfig(seed=seed, rate=rate, duration=duration, max_changes=int(rate * duration) + 1)


def register(app: typer.Typer) -> None:
    """Add ``emulator`` and ``sandbox`` to the CLI."""
    app.command("emulator")(emulator)
    app.command("sandbox")(sandbox)
