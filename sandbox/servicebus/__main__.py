"""``python -m dualbus.sandbox.servicebus``: run the emulator until SIGTERM or Ctrl-C."""

from __future__ import annotations

import argparse
import logging
import pathlib
import signal
import sys
from types import FrameType

from dualbus.sandbox.errors import SandboxError
from dualbus.sandbox.servicebus.config import load_config
from dualbus.sandbox.servicebus.server import EmulatorServer

__all__ = ["main"]


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m dualbus.sandbox.servicebus", description=__doc__)
    parser.add_argument("--config", type=pathlib.Path, help="an emulator Config.json (Microsoft's format)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback)")
    parser.add_argument("--port", type=int, default=5672, help="port to listen on; 0 picks a free one")
    parser.add_argument("--data-dir", type=pathlib.Path, help="keep messages in SQLite here across restarts")
    parser.add_argument(
        "--certificate-file",
        type=pathlib.Path,
        help="write the CA certificate (PEM) behind AMQP over TLS and the administration API's HTTPS here",
    )
    parser.add_argument(
        "--amqps-port",
        type=int,
        help="also listen here (5671 for the Python SDK's TLS client, which connects to no other port)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Start the emulator, print the connection string, serve until a signal; return the exit code."""
    args = _arguments(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    try:
        config = load_config(args.config) if args.config else None
        server = EmulatorServer(
            config=config, host=args.host, port=args.port, data_dir=args.data_dir, amqps_port=args.amqps_port
        )
    except SandboxError as exc:
        print(f"error: {exc}", file=sys.stderr)  # noqa: T201 - the CLI's error output
        return 2

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        server.stop()

    if args.certificate_file is not None:
        args.certificate_file.write_bytes(server.admin.certificate_pem)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(server.connection_string, flush=True)  # noqa: T201 - the CLI's one line of output
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
