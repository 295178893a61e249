"""The one exception root of dualbus's pipeline and the tree under it.

::

    DualbusError
    ├── ConfigError(ValueError)           settings or a definition file is wrong
    │   ├── TopologyError                 the topology breaks a rule or a Service Bus limit
    │   └── MapDefinitionError            a table map file is malformed
    ├── EnvelopeError(ValueError)         a message is not a valid envelope (permanent)
    │   └── RejectedError                 a check before any write failed; carries its reason code
    ├── TransformError(ValueError)        a record cannot be mapped (permanent); names map and field
    │   └── LookupUnresolvedError         a lookup points at nothing
    │       └── LookupMissingError        ... in the target, where the row's own change may still come
    ├── TransientError                    worth retrying: timeouts, 429, 5xx, connection errors
    │   ├── ThrottledError                the target asked us to wait (carries retry_after)
    │   └── HttpError                     a request got no answer (refused, reset, timed out)
    ├── PermanentError                    retrying cannot help: dead-letter with a reason
    └── BusError                          Service Bus failed in a way the caller must handle
        ├── LockLostError                 a message or session lock expired: the message comes back
        └── MessageTooLargeError          a message or batch is larger than the entity allows

Library errors are translated into this tree at the library's boundary and nowhere else: ``azure.*`` in
``shared.bus`` (``bus_errors``), httpx in ``shared.http`` and ``shared.api``, azure-identity in
``shared.identity``. A test (tests/unit/test_import_contract.py) keeps every other module from importing
those libraries or naming their exceptions.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "BusError",
    "ConfigError",
    "DualbusError",
    "EnvelopeError",
    "HttpError",
    "LockLostError",
    "LookupMissingError",
    "LookupUnresolvedError",
    "MapDefinitionError",
    "MessageTooLargeError",
    "PermanentError",
    "RejectedError",
    "Rejection",
    "ThrottledError",
    "TopologyError",
    "TransformError",
    "TransientError",
]


class DualbusError(Exception):
    """Root of every error dualbus raises on purpose."""


class ConfigError(DualbusError, ValueError):
    """Settings or a definition file is wrong; fix the configuration."""


class TopologyError(ConfigError):
    """The topology breaks one of its own rules or a Service Bus limit."""


class MapDefinitionError(ConfigError):
    """A table map file is malformed or inconsistent."""


class EnvelopeError(DualbusError, ValueError):
    """A message or payload is not a valid event envelope."""


class Rejection(StrEnum):
    """Why a message was refused before anything was written: its dead-letter reason code."""

    WRONG_CONTENT_TYPE = "WrongContentType"
    PROPERTY_MISMATCH = "PropertyMismatch"
    MISROUTED = "Misrouted"
    IMPLAUSIBLE_TIME = "ImplausibleTime"
    KEY_MISMATCH = "KeyMismatch"
    UNKNOWN_FIELD = "UnknownField"
    UNROUTABLE = "Unroutable"


class RejectedError(EnvelopeError):
    """A message breaks one of the checks made before anything is written; ``reason`` names which."""

    def __init__(self, message: str, *, reason: Rejection) -> None:
        super().__init__(message)
        self.reason = reason


class TransformError(DualbusError, ValueError):
    """A record cannot be transformed by its table map."""

    def __init__(self, message: str, *, map_name: str = "", field: str = "") -> None:
        prefix = f"map {map_name!r}" if map_name else ""
        if field:
            prefix = f"{prefix}, field {field!r}" if prefix else f"field {field!r}"
        super().__init__(f"{prefix}: {message}" if prefix else message)
        self.map_name = map_name
        self.field = field


class LookupUnresolvedError(TransformError):
    """A lookup (company, currency, group, ...) points at a row that does not exist."""


class LookupMissingError(LookupUnresolvedError):
    """The target holds no row the lookup names: there is none, or its own change is still on the way."""


class TransientError(DualbusError):
    """A failure worth retrying after a pause: timeout, connection error, 429, 5xx."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ThrottledError(TransientError):
    """The target throttled us and said how long to wait."""


class PermanentError(DualbusError):
    """A failure that retrying cannot fix; the message is dead-lettered with ``reason``."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class BusError(DualbusError):
    """Service Bus failed in a way the caller has to handle."""


class LockLostError(BusError):
    """A message or session lock expired: settling is no longer possible, the message will be redelivered."""


class MessageTooLargeError(BusError):
    """The service refused a message or batch as larger than the entity allows."""


class HttpError(TransientError):
    """A request got no answer: the connection was refused or broke, or the wait ran out."""

    def __init__(self, message: str, *, kind: str) -> None:
        super().__init__(message)
        self.kind = kind  # the HTTP library's name for what happened, e.g. ConnectError or ReadTimeout
