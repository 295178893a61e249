"""Structured logging (one JSON object per line) that redacts secrets wherever they appear.

Redaction covers values registered with :func:`register_secret` (every SecretStr in the settings) and the
shapes secrets take in text: SAS keys and signatures, bearer tokens, client secrets.
"""

from __future__ import annotations

import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any, ClassVar, TextIO

import orjson
from pydantic import SecretStr

__all__ = ["JsonFormatter", "RedactingFilter", "SdkEchoFilter", "redact", "register_secret", "setup_logging"]

_MASK = "***"
_PATTERNS = (
    re.compile(r"(SharedAccessKey=)[^;\s\"']+", re.IGNORECASE),
    re.compile(r"(sig=)[^&;\s\"']+", re.IGNORECASE),
    re.compile(r"(Bearer\s+)[A-Za-z0-9\-._~+/]+=*", re.IGNORECASE),
    re.compile(r"(client_secret[\"']?\s*[=:]\s*[\"']?)[^&\s\"',}]+", re.IGNORECASE),
)
_MIN_SECRET_LENGTH = 4
# Libraries that log at INFO what dualbus does all the time: httpx every request (a producer reading F&O after
# each data event wrote a line per event), the Service Bus SDK's AMQP stack every link state change (a
# consumer opens and closes a link per session it takes). At INFO they would drown dualbus's own lines, so
# they speak from WARNING up unless DEBUG is asked for.
_CHATTY_LIBRARIES = ("httpx", "httpcore", "azure.servicebus")


# What azure-servicebus 7.x logs at ERROR, with a traceback, when a management request's link goes down under
# it (``create_servicebus_exception`` in ``_transport/_pyamqp_transport.py``), before it raises the error to
# the caller. A consumer meets it whenever it closes the receiver of a session it lets go while the SDK's
# lock renewer is renewing that session (in three runs of six of bench/live.py at 200 changes/s): the
# renewer hands the failure to the hold, which knows the session was let go (``SessionHold.renewal_failed``);
# a state call that fails so raises a BusError to its caller. Every such failure reaches dualbus's code,
# which logs it at the level it deserves, so the SDK's line is only a debug one.
_SDK_MANAGEMENT_LINK_DOWN = "Unexpected error occurred (ValueError('Management Operation error occurred.'))"
_SDK_LOGGERS = "azure.servicebus."


class _Secrets:
    values: ClassVar[set[str]] = set()


def register_secret(secret: SecretStr | str | None) -> None:
    """Make sure a secret's value never appears in a log line."""
    value = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
    # Very short values would mask ordinary words; they are not credentials anyway.
    if value and len(value) >= _MIN_SECRET_LENGTH:
        _Secrets.values.add(value)


def redact(text: str) -> str:
    """The text with every known secret and secret-shaped value masked."""
    for value in _Secrets.values:
        text = text.replace(value, _MASK)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda match: match.group(1) + _MASK, text)
    return text


class RedactingFilter(logging.Filter):
    """Masks secrets in a record's message and exception text before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place; never drops it."""
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


class SdkEchoFilter(logging.Filter):
    """Lowers to DEBUG (without its traceback) the Service Bus SDK's ERROR line for a management link that
    went down, whose error the SDK raises to dualbus's code as well; drops it unless the SDK's loggers
    speak at DEBUG. Every other record passes unchanged."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Lower the SDK's echo; keep everything else."""
        if not record.name.startswith(_SDK_LOGGERS) or record.levelno < logging.ERROR:
            return True
        if not record.getMessage().startswith(_SDK_MANAGEMENT_LINK_DOWN):
            return True
        if not logging.getLogger(record.name).isEnabledFor(logging.DEBUG):
            return False
        # Lowered in place (a filter cannot hand on a copy before Python 3.12): the handlers after this one
        # see the debug line too, which is what it is.
        record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
        record.exc_info, record.exc_text = None, None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, extra fields, exception."""

    _STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message"}

    def format(self, record: logging.LogRecord) -> str:
        """Serialise one record."""
        payload: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        payload.update({k: v for k, v in vars(record).items() if k not in self._STANDARD})
        if record.exc_text:
            payload["exception"] = record.exc_text
        # The values are masked before they are encoded: a secret holding '"' or '\\' is escaped in the JSON
        # text, where masking the text alone missed it in an extra field.
        return redact(orjson.dumps(_redacted(payload), default=lambda value: redact(str(value))).decode())


def _redacted(value: object) -> object:
    """``value`` with every text in it masked (``redact``), through dicts, lists and tuples."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, bytes):
        return redact(value.decode(errors="replace"))
    if isinstance(value, dict):
        return {redact(str(key)): _redacted(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_redacted(item) for item in value]
    return value


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes each line to ``sys.stderr`` as it is when the line is written: a command run in-process (a
    test's CliRunner) swaps stderr for a while and closes its own after, and a handler bound to that one
    failed every later line with "I/O operation on closed file"."""

    def emit(self, record: logging.LogRecord) -> None:
        """Write one record to the current stderr."""
        self.stream = sys.stderr
        super().emit(record)


def setup_logging(level: str = "INFO", *, json: bool = True) -> None:
    """Configure the root logger to write redacted lines to stderr."""
    handler = _StderrHandler()
    handler.addFilter(SdkEchoFilter())
    handler.addFilter(RedactingFilter())
    handler.setFormatter(
        JsonFormatter() if json else logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in _CHATTY_LIBRARIES:
        logging.getLogger(name).setLevel(logging.NOTSET if root.level <= logging.DEBUG else logging.WARNING)
