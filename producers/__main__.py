"""``python -m dualbus.producers --from fo|dataverse [--areas a,b]``: run one origin's producer."""

from __future__ import annotations

import argparse
import sys

from dualbus.producers.main import produce
from dualbus.shared.envelope import Origin
from dualbus.shared.errors import DualbusError
from dualbus.shared.logs import redact

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments and run the producer; returns the process exit code."""
    parser = argparse.ArgumentParser(prog="python -m dualbus.producers", description=__doc__)
    parser.add_argument("--from", dest="origin", required=True, choices=[o.value for o in Origin])
    parser.add_argument("--areas", default=None, help="comma-separated areas (default: every area)")
    args = parser.parse_args(argv)
    areas = [a.strip() for a in args.areas.split(",") if a.strip()] if args.areas else None
    try:
        produce(Origin(args.origin), areas=areas)
    except DualbusError as exc:
        print(f"error: {redact(str(exc))}", file=sys.stderr)  # noqa: T201 - the command's own error line
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
