"""The audit trail of operator actions: one JSON line per action (who, when, what, outcome)."""

from __future__ import annotations

import getpass
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

__all__ = ["AuditLog", "operator_name"]


def operator_name() -> str:
    """Who is acting: ``DUALBUS_OPERATOR`` when set (e.g. by a CI job), else the OS user."""
    try:
        return os.environ.get("DUALBUS_OPERATOR") or getpass.getuser()
    except (KeyError, OSError):  # no passwd entry in some containers
        return "unknown"


class AuditLog:
    """Appends audit lines to a file; each line is flushed at once so a crash loses none."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def record(self, action: str, outcome: str, **details: Any) -> None:  # noqa: ANN401 - JSON details
        """Append one line: time, operator, action, outcome and the details."""
        line = {
            "time": datetime.now(UTC).isoformat(),
            "operator": operator_name(),
            "action": action,
            "outcome": outcome,
            **details,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("ab") as stream:
            stream.write(orjson.dumps(line, default=str) + b"\n")

    def read(self) -> list[dict[str, Any]]:
        """Every line so far (empty when there is no file yet)."""
        if not self.path.exists():
            return []
        return [orjson.loads(line) for line in self.path.read_bytes().splitlines() if line.strip()]
