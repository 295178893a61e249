"""Consumers: receive an area's events, transform them with the table maps and apply them to the other side.

Run one per area and direction: ``python -m consumers customer --to dataverse --concurrency 8``.
"""

from __future__ import annotations

from consumers._app import open_sink, run_consumer
from consumers._batch import BatchingApi, Requester
from consumers._changes import target_changes
from consumers._circuit import Circuit, CircuitPolicy, CircuitSink
from consumers._dataverse import VERSION_COLUMN, DataverseSink
from consumers._fo import VERSION_FIELD, FoSink
from consumers._limit import AdaptiveLimit
from consumers._metrics import ConsumerMetrics
from consumers._process import MessageProcessor, Settler
from consumers._retry import RetryPolicy, is_testing, set_testing
from consumers._runtime import Consumer, Gate, LockRenewer, RuntimeOptions
from consumers._settlement import Action, Reason, Verdict, verdict
from consumers._sink import ApplyResult, ContendedError, Sink, TargetChange
from consumers._tombstone_sink import TombstoneSink
from consumers._tombstones import Tombstones
from consumers._unroutable import UnroutableDrain, drain_unroutable

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
    "Reason",
    "Requester",
    "RetryPolicy",
    "RuntimeOptions",
    "Settler",
    "Sink",
    "TargetChange",
    "TombstoneSink",
    "Tombstones",
    "UnroutableDrain",
    "Verdict",
    "drain_unroutable",
    "is_testing",
    "open_sink",
    "run_consumer",
    "set_testing",
    "target_changes",
    "verdict",
]
