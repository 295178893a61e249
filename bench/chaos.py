"""The whole pipeline under SIGKILL: nothing lost, nothing applied twice, no drift, run after run.

Starts the pipeline as ``dualbus demo`` does (emulator, twins, both producers, the consumers), makes live
changes on both sides, kills a consumer, a producer or the emulator (in turn) with SIGKILL every few seconds
and starts it again, lets the pipeline settle, reconciles, and judges both twins' write logs
(``tests/integration/chaos``). Prints one JSON object per run: changes, kills per kind, lost, duplicated,
drift, dead letters, durations. Exits 1 when any run lost, duplicated or drifted.

Run from the repository root: python -m bench.chaos [--runs 5] [--duration 180] [--rate 15] [--kill-every 4]
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
from pathlib import Path
from types import FrameType

import orjson

from dualbus.demo.workload import DataSize
from tests.integration.chaos.run import ChaosOptions, run_chaos


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--duration", type=float, default=180.0, help="seconds of live changes")
    parser.add_argument("--rate", type=float, default=15.0, help="changes per second")
    parser.add_argument("--kill-every", type=float, default=4.0, help="seconds between two kills")
    parser.add_argument("--max-down", type=float, default=3.0, help="longest pause before a restart")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--settle-timeout", type=float, default=300.0)
    parser.add_argument("--run-dir", type=Path, help="where runs keep logs (default: a temporary directory)")
    return parser.parse_args()


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main() -> int:
    """Run the bench; the exit code says whether every run ended clean."""
    # SIGTERM and SIGINT (ignored in a background job unless set) stop a run the same way: its processes too.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _interrupt)
    args = _arguments()
    base = args.run_dir or Path(tempfile.mkdtemp(prefix="dualbus-chaos-"))
    clean = True
    for run in range(1, args.runs + 1):
        options = ChaosOptions(
            run_dir=base / f"run-{run}",
            duration=args.duration,
            rate=args.rate,
            kill_every=args.kill_every,
            max_down=args.max_down,
            seed=args.seed + run,
            size=DataSize(customers=100, vendors=20, products=10),
            settle_timeout=args.settle_timeout,
        )
        result = run_chaos(options)
        figures = {"run": run, "run_dir": str(options.run_dir), **result.as_dict()}
        sys.stdout.write(orjson.dumps(figures).decode() + "\n")
        sys.stdout.flush()
        clean = clean and result.lost == 0 and result.duplicated == 0 and result.drift == 0
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
