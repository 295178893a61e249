"""Settings come from the environment with secrets hidden; logs never show a secret."""

from __future__ import annotations

import io
import logging

import orjson
import pytest
from pydantic import SecretStr

from shared.errors import ConfigError
from shared.logs import JsonFormatter, RedactingFilter, redact, register_secret
from shared.settings import load_settings
from shared.telemetry import setup_telemetry


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nested DUALBUS_* variables fill the settings, and secrets stay hidden in their repr."""
    monkeypatch.setenv("DUALBUS_SERVICEBUS__CONNECTION_STRING", "Endpoint=sb://h;SharedAccessKey=topsecret")
    monkeypatch.setenv("DUALBUS_DATAVERSE__URL", "https://org.crm.dynamics.com")
    monkeypatch.setenv("DUALBUS_DATAVERSE__CLIENT_ID", "app")
    monkeypatch.setenv("DUALBUS_DATAVERSE__CLIENT_SECRET", "hunter22")
    settings = load_settings()
    assert settings.dataverse is not None
    assert settings.dataverse.scope == "https://org.crm.dynamics.com/.default"
    assert "hunter22" not in repr(settings)
    assert "topsecret" not in repr(settings)
    assert settings.dataverse.client_secret.get_secret_value() == "hunter22"


def test_both_bus_credentials_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """A connection string and a namespace together are ambiguous: ConfigError says so."""
    monkeypatch.setenv("DUALBUS_SERVICEBUS__CONNECTION_STRING", "Endpoint=sb://h")
    monkeypatch.setenv("DUALBUS_SERVICEBUS__NAMESPACE", "ns.servicebus.windows.net")
    with pytest.raises(ConfigError, match="exactly one of connection_string and namespace"):
        load_settings()


@pytest.mark.parametrize(
    ("text", "leak"),
    [
        ("Endpoint=sb://h/;SharedAccessKeyName=Root;SharedAccessKey=abcDEF123=", "abcDEF123"),
        ("SharedAccessSignature sr=x&sig=S1GnAtUrE%3D&se=1&skn=k", "S1GnAtUrE"),
        ("Authorization: Bearer eyJhbGciOi.payload.sig", "eyJhbGciOi"),
        ("client_secret=s3cr3t&scope=x", "s3cr3t"),
    ],
)
def test_secret_shapes_are_redacted(text: str, leak: str) -> None:
    """Secret-shaped values are masked even when nobody registered them."""
    assert leak not in redact(text)


def test_registered_secret_never_reaches_a_log_line() -> None:
    """A registered secret is masked in the message, the extra fields and the exception text."""
    register_secret(SecretStr("correct-horse-battery"))
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("test.redaction")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        raise RuntimeError("failed with correct-horse-battery")  # noqa: TRY301 - we need an exception to log
    except RuntimeError:
        logger.exception("using %s", "correct-horse-battery", extra={"detail": "correct-horse-battery"})
    finally:
        logger.removeHandler(handler)
    line = stream.getvalue()
    assert "correct-horse-battery" not in line
    record = orjson.loads(line)
    assert record["message"] == "using ***"
    assert record["level"] == "ERROR"


def test_telemetry_without_configuration_is_harmless() -> None:
    """With no OTEL_* variables, setting up telemetry works and exports nothing."""
    provider = setup_telemetry("dualbus-test", environ={})
    with provider.get_tracer("t").start_as_current_span("s") as span:
        assert span.get_span_context().is_valid


def test_unknown_exporter_is_a_config_error() -> None:
    """A misspelt exporter name is refused with the allowed values."""
    with pytest.raises(ConfigError, match="console, otlp, none"):
        setup_telemetry("dualbus-test", environ={"OTEL_TRACES_EXPORTER": "zipkinn"})
