"""The ``dlq`` commands' edges to Service Bus, faked for CLI tests: no client, no settings, and the audit
trail in the test's own folder."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from dualbus.commands import dlq


@contextmanager
def _no_client(_settings: object) -> Iterator[None]:
    yield None


def without_a_bus(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **fakes: object) -> None:
    """Take the bus away from the ``dlq`` commands, each of ``fakes`` standing in for the function of its
    name (``peek_dead_letters=...``, ``replay=...``)."""
    monkeypatch.setenv("DUALBUS_AUDIT_FILE", str(tmp_path / "audit.jsonl"))
    monkeypatch.setattr(dlq, "servicebus_settings", lambda: None)
    monkeypatch.setattr(dlq, "bus_client", _no_client)
    for name, fake in fakes.items():
        monkeypatch.setattr(dlq, name, fake)
