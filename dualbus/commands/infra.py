"""``dualbus infra``: write the deployment files that depend on the topology."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dualbus.shared.render_infra import docs_files, infra_files
from dualbus.shared.topology import default_topology

__all__ = ["register", "stale_files", "write_files"]

infra_app = typer.Typer(help="Render the deployment files from the topology.", no_args_is_help=True)


def write_files(root: Path, files: dict[str, str]) -> list[Path]:
    """Write each file under ``root`` (creating directories); the paths written, in order."""
    written = []
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        # Bytes, not text mode: the checked-in files keep "\n" line ends on every platform.
        path.write_bytes(text.encode("utf-8"))
        written.append(path)
    return written


def stale_files(root: Path, files: dict[str, str]) -> list[Path]:
    """The files under ``root`` that are missing or differ from what rendering gives now."""
    stale = []
    for relative, text in files.items():
        path = root / relative
        if not path.is_file() or path.read_bytes() != text.encode("utf-8"):
            stale.append(path)
    return stale


@infra_app.command("render")
def render(
    output_dir: Annotated[
        Path, typer.Option("--output-dir", help="Where the infra files go (parameters, k8s, emulator).")
    ] = Path("infra"),
    docs_dir: Annotated[Path, typer.Option("--docs-dir", help="Where the flow picture goes.")] = Path("docs"),
    check: Annotated[
        bool, typer.Option("--check", help="Write nothing; exit 1 if a file is missing or out of date.")
    ] = False,
) -> None:
    """Render the Bicep parameters, Kubernetes manifests, emulator Config.json and flow picture.

    Example: dualbus infra render --output-dir infra --docs-dir docs
    """
    topology = default_topology()
    groups = [(output_dir, infra_files(topology)), (docs_dir, docs_files(topology))]
    if check:
        stale = [path for root, files in groups for path in stale_files(root, files)]
        for path in stale:
            typer.echo(f"out of date: {path}", err=True)
        raise typer.Exit(1 if stale else 0)
    for root, files in groups:
        for path in write_files(root, files):
            typer.echo(f"wrote {path}")


def register(app: typer.Typer) -> None:
    """Add the ``infra`` group to the CLI."""
    app.add_typer(infra_app, name="infra")
