"""Settings come from the environment with secrets hidden; logs never show a secret."""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator

import orjson
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from pydantic import SecretStr

from dualbus.shared.errors import ConfigError
from dualbus.shared.logs import JsonFormatter, RedactingFilter, redact, register_secret, setup_logging
from dualbus.shared.settings import ApiSettings, Credential, Settings, load_settings
from dualbus.shared.telemetry import setup_telemetry, tracing_on


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


@contextlib.contextmanager
def json_logger(name: str) -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger whose lines go, redacted and as JSON, to the stream yielded beside it, and nowhere else."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(name)
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield logger, stream
    finally:
        logger.removeHandler(handler)


def test_registered_secret_never_reaches_a_log_line() -> None:
    """A registered secret is masked in the message, the extra fields and the exception text."""
    register_secret(SecretStr("correct-horse-battery"))
    with json_logger("test.redaction") as (logger, stream):
        try:
            raise RuntimeError("failed with correct-horse-battery")  # noqa: TRY301 - we need an exception to log
        except RuntimeError:
            logger.exception("using %s", "correct-horse-battery", extra={"detail": "correct-horse-battery"})
    line = stream.getvalue()
    assert "correct-horse-battery" not in line
    record = orjson.loads(line)
    assert record["message"] == "using ***"
    assert record["level"] == "ERROR"


def test_a_secret_that_json_escapes_is_masked_in_extra_fields() -> None:
    """A secret holding '"' or '\\' is escaped in the JSON line: it is masked before the encoding, in the
    extra fields as in the message, where masking the encoded line alone left it in an extra field."""
    secret = 'pa"ss\\word-KEY-42'
    register_secret(secret)
    with json_logger("test.redaction.escaped") as (logger, stream):
        extra = {"error": f"failed with {secret}", "errors": [secret], "by": {secret: 1}}
        extra["raw"] = secret.encode()
        logger.warning("a failure", extra=extra)
    record = orjson.loads(stream.getvalue())
    assert (record["error"], record["errors"]) == ("failed with ***", ["***"])
    assert (record["by"], record["raw"]) == ({"***": 1}, "***")
    assert "word-KEY-42" not in stream.getvalue()


@pytest.fixture
def root_logging() -> Iterator[None]:
    """setup_logging changes process-wide loggers: put them back."""
    names = ("", "httpx", "httpcore", "azure.servicebus")
    saved = {name: (logging.getLogger(name).level, list(logging.getLogger(name).handlers)) for name in names}
    yield
    for name, (level, handlers) in saved.items():
        logging.getLogger(name).setLevel(level)
        logging.getLogger(name).handlers[:] = handlers


@pytest.mark.usefixtures("root_logging")
def test_libraries_that_log_each_request_speak_from_warning_up_unless_debug(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """At INFO, httpx's line per request and the Service Bus SDK's per link state change stay out while
    dualbus's own INFO lines and the libraries' warnings pass; at DEBUG the libraries speak again."""
    setup_logging("INFO")
    logging.getLogger("httpx").info("HTTP Request: GET http://f.example/data/CustomersV3 200 OK")
    logging.getLogger("azure.servicebus._pyamqp.aio._link_async").info("Link state changed")
    logging.getLogger("dualbus.producer").info("published 3 changes")
    logging.getLogger("httpx").warning("a warning of its own")
    lines = [orjson.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(line["logger"], line["message"]) for line in lines] == [
        ("dualbus.producer", "published 3 changes"),
        ("httpx", "a warning of its own"),
    ]
    setup_logging("DEBUG")
    logging.getLogger("azure.servicebus._pyamqp.aio._link_async").info("Link state changed")
    assert "Link state changed" in capsys.readouterr().err


def test_telemetry_without_configuration_is_harmless() -> None:
    """With no OTEL_* variables, setting up telemetry works, and no span is made: none would go anywhere."""
    provider = setup_telemetry("dualbus-test", environ={})
    assert not tracing_on(provider)
    with provider.get_tracer("t").start_as_current_span("s") as span:
        assert not span.get_span_context().is_valid
        assert not span.is_recording()


def test_a_traces_exporter_makes_tracing_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    """With OTEL_TRACES_EXPORTER set, spans are recorded (and exported by it)."""
    installed: list[object] = []
    # Not installed for the rest of the test run: every later span would go to the console.
    monkeypatch.setattr(trace, "set_tracer_provider", installed.append)
    provider = setup_telemetry("dualbus-test", environ={"OTEL_TRACES_EXPORTER": "console"})
    assert installed == [provider]
    assert isinstance(provider, TracerProvider)
    assert tracing_on(provider)
    with provider.get_tracer("t").start_as_current_span("s") as span:
        assert span.is_recording()
    provider.shutdown()  # its console exporter is done before pytest closes the output


def test_unknown_exporter_is_a_config_error() -> None:
    """A misspelt exporter name is refused with the allowed values."""
    with pytest.raises(ConfigError, match="console, otlp, none"):
        setup_telemetry("dualbus-test", environ={"OTEL_TRACES_EXPORTER": "zipkinn"})


def test_client_secret_is_the_default_credential(monkeypatch: pytest.MonkeyPatch) -> None:
    """URL, client id and secret alone (the settings of every existing deployment) mean a client secret."""
    monkeypatch.setenv("DUALBUS_FO__URL", "https://fo.example")
    monkeypatch.setenv("DUALBUS_FO__TENANT_ID", "contoso.onmicrosoft.com")
    monkeypatch.setenv("DUALBUS_FO__CLIENT_ID", "app")
    monkeypatch.setenv("DUALBUS_FO__CLIENT_SECRET", "hunter22")
    fo = load_settings().fo
    assert fo is not None
    assert fo.credential is Credential.CLIENT_SECRET
    assert fo.resolved_authority is None  # azure-identity's default: the public cloud
    assert fo.resolved_tenant == "contoso.onmicrosoft.com"


def test_a_secret_credential_without_a_secret_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forgetting the secret is caught at start, with the other credential kinds named."""
    monkeypatch.setenv("DUALBUS_FO__URL", "https://fo.example")
    monkeypatch.setenv("DUALBUS_FO__CLIENT_ID", "app")
    with pytest.raises(ConfigError, match="managed_identity"):
        load_settings()


def test_managed_identity_needs_no_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """A managed identity (client id optional: a user-assigned one) is complete without a secret."""
    monkeypatch.setenv("DUALBUS_DATAVERSE__URL", "https://org.crm.dynamics.com")
    monkeypatch.setenv("DUALBUS_DATAVERSE__CREDENTIAL", "managed_identity")
    dataverse = load_settings().dataverse
    assert dataverse is not None
    assert dataverse.credential is Credential.MANAGED_IDENTITY
    assert dataverse.client_secret is None


def test_an_https_token_url_still_works_and_becomes_authority_and_tenant() -> None:
    """The older token_url setting is read as the authority and tenant azure-identity takes."""
    settings = ApiSettings(
        url="https://fo.example",
        client_id="app",
        client_secret=SecretStr("s"),
        token_url="https://login.microsoftonline.us/contoso/oauth2/v2.0/token",
    )
    assert settings.resolved_authority == "https://login.microsoftonline.us"
    assert settings.resolved_tenant == "contoso"
    assert settings.resolved_token_url == settings.token_url


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("authority_host", "http://127.0.0.1:8080"),
        ("token_url", "http://127.0.0.1:8080/t/oauth2/v2.0/token"),
        ("token_url", "https://login.example/token"),
    ],
)
def test_an_http_or_malformed_authority_is_a_config_error(field: str, value: str) -> None:
    """azure-identity refuses http authorities; saying so at start beats failing on the first message."""
    with pytest.raises(ConfigError, match=field):
        load_settings(fo={"url": "https://fo.example", "client_id": "a", "client_secret": "s", field: value})


def test_settings_name_every_secret_they_hold() -> None:
    """What a process registers for redaction: both APIs' client secrets and the connection string."""
    fo_secret, dv_secret = SecretStr("fo-secret-1"), SecretStr("dv-secret-2")
    settings = Settings(
        fo=ApiSettings(url="https://fo.example", client_id="a", client_secret=fo_secret),
        dataverse=ApiSettings(url="https://dv.example", client_id="b", client_secret=dv_secret),
        servicebus={"connection_string": SecretStr("Endpoint=sb://x/;SharedAccessKey=sb-secret-3")},
    )
    values = sorted(secret.get_secret_value() for secret in settings.secrets())
    assert values == ["Endpoint=sb://x/;SharedAccessKey=sb-secret-3", "dv-secret-2", "fo-secret-1"]
    assert Settings(fo=None, dataverse=None, servicebus=None).secrets() == ()


_SDK_ECHO = (
    "Unexpected error occurred (ValueError('Management Operation error occurred.')). Handler shutting down."
)


def _log_sdk_error(message: str) -> None:
    """Log ``message`` at ERROR with a traceback, as the SDK's base handler does."""
    error = ValueError("Management Operation error occurred.")
    logging.getLogger("azure.servicebus.aio._base_handler_async").error(
        message, exc_info=(ValueError, error, None)
    )


@pytest.mark.usefixtures("root_logging")
def test_the_sdks_error_line_for_a_management_link_gone_is_a_debug_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The SDK raises that error to dualbus too (a renewal's to the session's hold), which logs it as it
    deserves: its own ERROR line and traceback stay out at INFO, come at DEBUG as a plain debug line, and
    any other SDK error still comes as an error."""
    setup_logging("INFO")
    _log_sdk_error(_SDK_ECHO)
    _log_sdk_error("Unexpected error occurred (ConnectionError('refused')). Handler shutting down.")
    lines = [orjson.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(line["level"], line["message"][:40]) for line in lines] == [
        ("ERROR", "Unexpected error occurred (ConnectionErr")
    ]
    assert "exception" in lines[0]
    setup_logging("DEBUG")
    _log_sdk_error(_SDK_ECHO)
    [line] = [orjson.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert (line["level"], line["message"]) == ("DEBUG", _SDK_ECHO)
    assert "exception" not in line
