"""The audit trail of operator actions: one JSON line per action (who, when, what, outcome).

Where it is (``audit_path``): ``DUALBUS_AUDIT_FILE`` when set; else ``audit.jsonl`` in ``DUALBUS_STATE_DIR``
when that is set; else the user's state directory, ``$XDG_STATE_HOME/dualbus/audit.jsonl`` (by default
``~/.local/state/dualbus/audit.jsonl``, the XDG Base Directory place for state that outlives a run:
https://specifications.freedesktop.org/basedir-spec/latest/). Never silently the current directory: every
command that writes a line says where.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Self

import orjson

from dualbus.shared.errors import ConfigError
from dualbus.shared.settings import Settings

__all__ = ["AUDIT_FILE_NAME", "AuditLog", "audit_path", "operator_name"]

AUDIT_FILE_NAME = "audit.jsonl"


def audit_path(settings: Settings, environ: dict[str, str] | None = None) -> Path:
    """Where the audit trail is kept (see the module's docstring); always an absolute path."""
    env = os.environ if environ is None else environ
    if settings.audit_file is not None:
        chosen = settings.audit_file
    elif "state_dir" in settings.model_fields_set:
        chosen = settings.state_dir / AUDIT_FILE_NAME
    else:
        state_home = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        chosen = Path(state_home) / "dualbus" / AUDIT_FILE_NAME
    return chosen.expanduser().absolute()


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
        with self._appending() as stream:
            stream.write(orjson.dumps(line, default=str) + b"\n")

    def writable(self) -> Self:
        """This trail, once a line is known to be addable: checked before an action, so that no action
        is taken that its line cannot follow (ConfigError naming the file)."""
        with self._appending():
            pass
        return self

    @contextmanager
    def _appending(self) -> Iterator[BinaryIO]:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("ab") as stream:
                yield stream
        except OSError as exc:
            raise ConfigError(
                f"{self.path}: the audit trail cannot be written ({exc.strerror or exc}): set "
                "DUALBUS_AUDIT_FILE to a file that can be"
            ) from exc

    def read(self) -> list[dict[str, Any]]:
        """Every line so far (empty when there is no file yet)."""
        if not self.path.exists():
            return []
        return [orjson.loads(line) for line in self.path.read_bytes().splitlines() if line.strip()]
