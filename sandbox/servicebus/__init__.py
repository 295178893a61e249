"""A Service Bus emulator that the real azure-servicebus SDK talks to over AMQP 1.0.

Start one for tests or a demo with :func:`start_in_process` (a background thread) or
:func:`start_subprocess` (``python -m dualbus.sandbox.servicebus``); both handles give ``connection_string``,
``host``, ``port`` and ``stop()``. :class:`EmulatorServer` is the server itself, for a caller that runs
its loop (``serve_forever``) on a thread of its own. See docs/emulator.md.
"""

from dualbus.sandbox.servicebus.errors import AmqpDecodeError, BrokerError, EmulatorError, EmulatorStartError
from dualbus.sandbox.servicebus.launcher import (
    EmulatorProcess,
    EmulatorThread,
    start_in_process,
    start_subprocess,
)
from dualbus.sandbox.servicebus.sas import DEFAULT_KEY_NAME, DEFAULT_KEY_VALUE, KEYS_ENV_VAR
from dualbus.sandbox.servicebus.server import EmulatorServer

__all__ = [
    "DEFAULT_KEY_NAME",
    "DEFAULT_KEY_VALUE",
    "KEYS_ENV_VAR",
    "AmqpDecodeError",
    "BrokerError",
    "EmulatorError",
    "EmulatorProcess",
    "EmulatorServer",
    "EmulatorStartError",
    "EmulatorThread",
    "start_in_process",
    "start_subprocess",
]
