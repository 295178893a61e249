"""``python -m dualbus.consumers AREA --to dataverse|fo [--concurrency N]``."""

from __future__ import annotations

import typer

from dualbus.consumers._cli import consume


def main() -> None:
    """Run one consumer from the command line."""
    typer.run(consume)


if __name__ == "__main__":
    main()
