"""Consumers: receive an area's events, transform them with the table maps and apply them to the other side.

Run one per area and direction: ``python -m consumers customer --to dataverse --concurrency 8``.
"""

from __future__ import annotations

from consumers._app import open_sink, run_consumer
from consumers._batch import BatchingApi, Requester
from consumers._changes import target_changes
from consumers._dataverse import VERSION_COLUMN, DataverseSink
from consumers._fo import VERSION_FIELD, FoSink
from consumers._limit import AdaptiveLimit
from consumers._metrics import ConsumerMetrics
from consumers._process import MessageProcessor, Settler
from consumers._retry import RetryPolicy, is_testing, set_testing
from consumers._runtime import Consumer, Gate, RuntimeOptions
from consumers._settlement import Action, Reason, Verdict, verdict
from consumers._sink import ApplyResult, Sink, TargetChange

__all__ = [
    "VERSION_COLUMN",
    "VERSION_FIELD",
    "Action",
    "AdaptiveLimit",
    "ApplyResult",
    "BatchingApi",
    "Consumer",
    "ConsumerMetrics",
    "DataverseSink",
    "FoSink",
    "Gate",
    "MessageProcessor",
    "Reason",
    "Requester",
    "RetryPolicy",
    "RuntimeOptions",
    "Settler",
    "Sink",
    "TargetChange",
    "Verdict",
    "is_testing",
    "open_sink",
    "run_consumer",
    "set_testing",
    "target_changes",
    "verdict",
]
