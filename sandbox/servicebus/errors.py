"""The Service Bus emulator's errors, under the sandbox's root.

::

    SandboxError
    └── EmulatorError                     the emulator failed on purpose
        ├── AmqpDecodeError(ValueError)   bytes on the wire are not valid AMQP
        ├── EmulatorStartError            the emulator did not come up (port, data dir, child process)
        └── BrokerError                   an operation broke a Service Bus rule; carries the AMQP condition
"""

from __future__ import annotations

from dualbus.sandbox.errors import SandboxError

__all__ = ["AmqpDecodeError", "BrokerError", "EmulatorError", "EmulatorStartError"]


class EmulatorError(SandboxError):
    """Root of the emulator's own errors."""


class AmqpDecodeError(EmulatorError, ValueError):
    """Bytes received on a link are not valid AMQP 1.0."""


class EmulatorStartError(EmulatorError):
    """The emulator could not start or did not report ready in time."""


class BrokerError(EmulatorError):
    """An operation broke a Service Bus rule; ``condition`` is the AMQP error the client is told."""

    def __init__(self, condition: str, description: str, *, status: int = 400) -> None:
        super().__init__(description)
        self.condition = condition
        self.description = description
        self.status = status
