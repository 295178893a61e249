"""Bad input to any command: one line naming what to fix, exit 2 for usage and 1 for failures, no traceback.

The sweep runs each command line in-process (as ``dualbus`` runs it, through the root group) with nothing
configured but what the case sets; a few cases run the installed entry point in a subprocess, where a
traceback would reach the terminal.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from dualbus.cli import app

USAGE, FAILURE = 2, 1
MALFORMED = "Endpoint=nowhere;SharedAccessKey=not-shown"
# A connection string in the namespace setting: the error must not echo its key.
MISPLACED = "Endpoint=sb://x.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=not-shown-key"
# Nothing listens on port 9 (discard) on loopback: the connection is refused at once.
UNREACHABLE = "Endpoint=sb://127.0.0.1:9;SharedAccessKeyName=k;SharedAccessKey=s;UseDevelopmentEmulator=true"


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    """Paths a case can name: missing, garbled, valid rules, a directory that does not exist."""
    garbled = tmp_path / "garbled.json"
    garbled.write_text("{not json")
    rules = tmp_path / "rules.json"
    rules.write_text('{"rules": [{"name": "r", "threshold": 1, "window_minutes": 1}]}')
    bad_rules = tmp_path / "bad-rules.json"
    bad_rules.write_text('{"rules": [{"name": "r", "threshold": 0, "window_minutes": 1, "colour": "red"}]}')
    return {
        "missing": str(tmp_path / "missing.jsonl"),
        "garbled": str(garbled),
        "rules": str(rules),
        "bad_rules": str(bad_rules),
        "no_dir": str(tmp_path / "no-such-dir" / "out.jsonl"),
        "a_dir": str(tmp_path),
    }


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A loopback port somebody listens on."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield int(listener.getsockname()[1])


@pytest.fixture(autouse=True)
def bare_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Nothing configured: no Service Bus, no APIs, the audit trail in the test's directory.

    ``produce`` and ``consume`` set up logging to the stream they run with, here the runner's capture,
    which is closed after the case: the root logger is put back so later cases do not log into it.
    """
    for name in list(os.environ):
        if name.startswith(("DUALBUS_", "OTEL_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DUALBUS_AUDIT_FILE", str(tmp_path / "audit.jsonl"))
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


USAGE_ERRORS: list[tuple[str, ...]] = [
    ("no-such-command",),
    ("dlq", "no-such-command"),
    ("dlq", "list", "--bogus"),
    ("dlq", "list", "--to", "sideways"),
    ("dlq", "list", "--area", "nowhere"),
    ("dlq", "show"),
    ("dlq", "replay"),
    ("dlq", "replay", "--all", "--set", "SalesCurrencyCode=USD"),
    ("dlq", "replay", "--all", "--set", "data.NoSuchField=1"),
    ("dlq", "replay", "--all", "--set", "no-equals-sign"),
    ("dlq", "replay", "--from-file", "{missing}"),
    ("dlq", "replay", "--from-file", "{a_dir}"),
    ("dlq", "replay", "--all", "--older-than-minutes", "soon"),
    # An age that is no number of minutes, or a negative one, which every letter is older than.
    ("dlq", "replay", "--reason", "X", "--older-than-minutes", "-60"),
    ("dlq", "replay", "--all", "--older-than-minutes", "nan"),
    ("dlq", "purge", "--all", "--older-than-minutes", "inf"),
    ("dlq", "purge", "--all", "--older-than-minutes", "nan"),
    ("dlq", "purge", "--all", "--older-than-minutes", "1e300"),
    ("dlq", "purge"),
    ("dlq", "purge", "--all", "--to", "up"),
    # A sequence number names a letter within one route: over several it would act on one in each.
    ("dlq", "purge", "--id", "42", "--yes"),
    ("dlq", "purge", "--id", "42", "--area", "customer", "--yes"),
    ("dlq", "replay", "--id", "7", "--to", "fo"),
    # Company's maps go to Dataverse only: it has no to-fo route.
    ("dlq", "list", "--area", "company", "--to", "fo"),
    ("dlq", "purge", "--all", "--area", "company", "--to", "fo", "--yes"),
    ("dlq", "export", "--area", "nowhere"),
    ("status", "--interval", "abc"),
    ("status", "--interval", "-1"),
    # A wait of inf or nan seconds: min= alone takes both.
    ("status", "--interval", "inf"),
    ("status", "--interval", "nan"),
    ("alerts", "run", "{rules}", "--interval", "inf"),
    ("alerts", "run", "{rules}", "--duration", "nan"),
    ("demo", "--rate", "nan"),
    ("demo", "--duration", "inf"),
    ("sandbox", "--rate", "inf"),
    ("sandbox", "--duration", "nan"),
    ("status", "--metrics", "{missing}"),
    ("pause", "customer", "--to", "sideways"),
    ("pause", "nowhere", "--to", "fo"),
    ("pause", "customer"),
    ("resume", "nowhere", "--to", "dataverse"),
    ("alerts", "check", "{missing}"),
    ("alerts", "run", "{missing}"),
    ("alerts", "run", "{rules}", "--interval", "0"),
    ("consume", "customer", "--to", "sideways"),
    ("consume", "customer", "--to", "fo", "--concurrency", "0"),
    ("produce", "--from", "elsewhere"),
    ("initial-sync", "--from", "elsewhere"),
    ("initial-sync", "--page-size", "0"),
    # A wait of nan seconds never ended; a negative one failed each layer at its first look.
    ("initial-sync", "--wait-timeout", "nan"),
    ("initial-sync", "--wait-timeout", "-1"),
    ("initial-sync", "--areas", "nowhere"),
    # It was taken and ignored: every company's rows went to F&O.
    ("initial-sync", "--from", "dataverse", "--companies", "USMF"),
    ("produce", "--from", "fo", "--areas", "nowhere"),
    ("sandbox", "--fo-port", "70000"),
    ("sandbox", "--customers", "-1"),
    ("emulator", "--port", "-1"),
    ("demo", "--rate", "fast"),
    ("demo", "--duration", "0"),
    ("topology", "render", "--format", "bicep-nope"),
    ("reconcile", "--source", "sideways"),
    ("reconcile", "--areas", "nowhere"),
    ("reconcile", "--areas", "customer,nowhere"),
    ("reconcile", "--delete-orphans"),
    ("console", "--allowed-host", "console.example.com"),
    ("console", "--token", "short"),
    ("console", "--host", "0.0.0.0"),  # noqa: S104 - refused before anything binds
    ("console", "--token", "a-console-token-of-length", "--allowed-host", "http://console.example.com:8080"),
    ("version", "--extra"),
    # A client's secret given in the wrong shape is not echoed in the usage error.
    ("sandbox", "--client", "pipeline:not-shown-secret"),
    ("sandbox", "--client", "=not-shown-secret"),
]

FAILURES: list[tuple[dict[str, str], tuple[str, ...]]] = [
    ({}, ("dlq", "list")),
    ({}, ("status", "--interval", "0")),
    ({}, ("paused",)),
    ({}, ("reconcile",)),
    ({"DUALBUS_SERVICEBUS__CONNECTION_STRING": MALFORMED}, ("status", "--interval", "0")),
    ({"DUALBUS_SERVICEBUS__CONNECTION_STRING": MALFORMED}, ("dlq", "list")),
    ({"DUALBUS_SERVICEBUS__CONNECTION_STRING": MALFORMED}, ("dlq", "show", "42")),
    ({"DUALBUS_SERVICEBUS__CONNECTION_STRING": MALFORMED}, ("dlq", "replay", "--all")),
    ({"DUALBUS_SERVICEBUS__CONNECTION_STRING": MALFORMED}, ("dlq", "purge", "--all", "--yes")),
    ({"DUALBUS_SERVICEBUS__CONNECTION_STRING": MALFORMED}, ("pause", "customer", "--to", "fo")),
    ({"DUALBUS_SERVICEBUS__CONNECTION_STRING": MALFORMED}, ("alerts", "run", "{rules}", "--duration", "1")),
    ({"DUALBUS_SERVICEBUS__CONNECTION_STRING": MALFORMED}, ("consume", "customer", "--to", "fo")),
    ({"DUALBUS_SERVICEBUS__CONNECTION_STRING": MALFORMED}, ("produce", "--from", "fo")),
    ({"DUALBUS_SERVICEBUS__CONNECTION_STRING": MALFORMED}, ("reconcile",)),
    ({"DUALBUS_SERVICEBUS__NAMESPACE": MISPLACED}, ("consume", "customer", "--to", "fo")),
    ({"DUALBUS_SERVICEBUS__NAMESPACE": MISPLACED}, ("produce", "--from", "fo")),
    ({"DUALBUS_SERVICEBUS__NAMESPACE": MISPLACED}, ("dlq", "list")),
    (
        {"DUALBUS_SERVICEBUS__CONNECTION_STRING": UNREACHABLE},
        ("dlq", "list", "--area", "currency", "--to", "fo"),
    ),
    ({"DUALBUS_STATE_DIR": "{garbled}/state"}, ("dlq", "list")),
    ({"DUALBUS_FO__URL": "not a url"}, ("reconcile",)),
    ({}, ("dlq", "export", "-o", "{no_dir}")),
    ({}, ("dlq", "export", "-o", "{a_dir}")),
    ({}, ("dlq", "replay", "--from-file", "{garbled}")),
    ({}, ("alerts", "check", "{garbled}")),
    ({}, ("alerts", "check", "{bad_rules}")),
    ({}, ("infra", "render", "--output-dir", "{garbled}/infra")),
    ({}, ("topology", "render", "--format", "emulator-config", "-o", "{no_dir}")),
]


def _fill(args: tuple[str, ...], files: dict[str, str]) -> list[str]:
    return [arg.format(**files) for arg in args]


def _assert_one_line(result: Result, code: int) -> str:
    assert result.exit_code == code, result.output
    # CliRunner catches what escapes; only SystemExit (an exit code) may.
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    # produce and consume log as JSON lines (their structured logs, not the error); run in one process,
    # a second one warns that telemetry was set up already, which a real process never does.
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith('{"time"')]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert "not-shown" not in result.output  # a secret in the input is never echoed
    return lines[0]


@pytest.mark.parametrize("args", USAGE_ERRORS, ids=" ".join)
def test_usage_errors_exit_2_with_one_line(args: tuple[str, ...], files: dict[str, str]) -> None:
    """A wrong command line is refused before anything runs."""
    _assert_one_line(CliRunner().invoke(app, _fill(args, files)), USAGE)


@pytest.mark.parametrize(
    ("env", "args"), FAILURES, ids=lambda value: " ".join(value) if isinstance(value, tuple) else ""
)
def test_failures_exit_1_with_one_line(
    env: dict[str, str], args: tuple[str, ...], files: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A right command line that meets a wrong world: configuration, files, an endpoint nobody answers."""
    for name, value in env.items():
        monkeypatch.setenv(name, value.format(**files))
    _assert_one_line(CliRunner().invoke(app, _fill(args, files)), FAILURE)


def test_a_malformed_connection_string_names_the_setting_not_the_secret() -> None:
    """The error says which setting is malformed and what it must look like."""
    env = {"DUALBUS_SERVICEBUS__CONNECTION_STRING": MALFORMED}
    result = CliRunner().invoke(app, ["dlq", "list"], env=env)
    line = _assert_one_line(result, FAILURE)
    assert "DUALBUS_SERVICEBUS__CONNECTION_STRING" in line
    assert "Endpoint=sb://" in line


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DUALBUS_", "OTEL_"))}
    return subprocess.run(  # noqa: S603 - our own interpreter and entry point
        [sys.executable, "-m", "dualbus", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def test_the_entry_point_reports_a_busy_port_in_one_line(busy_port: int) -> None:
    """``dualbus sandbox`` and ``dualbus emulator`` on a port somebody listens on: exit 1, the port named."""
    for args in (("sandbox", "--fo-port", str(busy_port)), ("emulator", "--port", str(busy_port))):
        completed = _run(*args)
        assert completed.returncode == FAILURE, completed.stderr
        assert "Traceback" not in completed.stderr
        assert str(busy_port) in completed.stderr


def test_the_entry_point_gives_usage_errors_in_one_line() -> None:
    """The real entry point prints no usage box and no traceback: one line and exit code 2."""
    completed = _run("dlq", "replay", "--bogus")
    assert completed.returncode == USAGE
    (line,) = completed.stderr.strip().splitlines()
    assert line.startswith("error: No such option: --bogus (see '")
    assert line.endswith("dlq replay --help')")
