"""Consumers: receive an area's events, transform them with the table maps and apply them to the other side.

Run one per area and direction: ``python -m dualbus.consumers customer --to dataverse``.
"""

from __future__ import annotations

from dualbus.consumers._app import open_sink, run_consumer
from dualbus.consumers._batch import BatchingApi, Requester
from dualbus.consumers._changes import target_changes
from dualbus.consumers._circuit import Circuit, CircuitPolicy, CircuitSink
from dualbus.consumers._dataverse import VERSION_COLUMN, DataverseSink
from dualbus.consumers._fo import VERSION_FIELD, FoSink
from dualbus.consumers._limit import AdaptiveLimit
from dualbus.consumers._metrics import ConsumerMetrics
from dualbus.consumers._process import MessageProcessor, Settler
from dualbus.consumers._retry import MessageRetry
from dualbus.consumers._runtime import Consumer, Gate, RuntimeOptions
from dualbus.consumers._settlement import Action, Reason, Verdict, verdict
from dualbus.consumers._sink import ApplyResult, ContendedError, Sink, TargetChange
from dualbus.consumers._tombstone_sink import TombstoneSink
from dualbus.consumers._tombstones import Tombstones
from dualbus.consumers._unroutable import UnroutableDrain, drain_unroutable
from dualbus.shared.bus_calls import LockRenewer

__all__ = [
    "VERSION_COLUMN",
    "VERSION_FIELD",
    "Action",
    "AdaptiveLimit",
    "ApplyResult",
    "BatchingApi",
    "Circuit",
    "CircuitPolicy",
    "CircuitSink",
    "Consumer",
    "ConsumerMetrics",
    "ContendedError",
    "DataverseSink",
    "FoSink",
    "Gate",
    "LockRenewer",
    "MessageProcessor",
    "MessageRetry",
    "Reason",
    "Requester",
    "RuntimeOptions",
    "Settler",
    "Sink",
    "TargetChange",
    "TombstoneSink",
    "Tombstones",
    "UnroutableDrain",
    "Verdict",
    "drain_unroutable",
    "open_sink",
    "run_consumer",
    "target_changes",
    "verdict",
]
