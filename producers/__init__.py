"""Sources of entity changes (F&O, Dataverse), the publisher, checkpoints and the initial sync.

Run a producer with ``python -m dualbus.producers --from fo|dataverse`` or ``dualbus produce``; backfill with
``dualbus initial-sync``. Settings come from ``DUALBUS_*`` variables (``producers.settings``).
"""

from __future__ import annotations

from dualbus.producers.checkpoints import CheckpointStore
from dualbus.producers.clock import VersionClock, process_clock
from dualbus.producers.dataverse import DataverseSource
from dualbus.producers.errors import (
    CheckpointError,
    CheckpointUnavailableError,
    InvalidDataEventError,
    SourceError,
)
from dualbus.producers.events import EchoFilter, build_envelope
from dualbus.producers.fo_events import FoDataEvent, parse_data_event
from dualbus.producers.fo_handler import FoEventHandler
from dualbus.producers.fo_poller import FoScanner
from dualbus.producers.fo_queue import EventSource, FoQueueIntake
from dualbus.producers.fo_reader import FoReader
from dualbus.producers.fo_webhook import webhook_app
from dualbus.producers.initial_sync import SyncSummary, run_initial_sync
from dualbus.producers.publisher import ProducerMetrics, Publisher
from dualbus.producers.runner import ProducerContext, open_context, run_producer
from dualbus.producers.settings import FoEvents, ProducerOptions, load_producer_settings
from dualbus.producers.tables import SourceTable, source_tables

__all__ = [
    "CheckpointError",
    "CheckpointStore",
    "CheckpointUnavailableError",
    "DataverseSource",
    "EchoFilter",
    "EventSource",
    "FoDataEvent",
    "FoEventHandler",
    "FoEvents",
    "FoQueueIntake",
    "FoReader",
    "FoScanner",
    "InvalidDataEventError",
    "ProducerContext",
    "ProducerMetrics",
    "ProducerOptions",
    "Publisher",
    "SourceError",
    "SourceTable",
    "SyncSummary",
    "VersionClock",
    "build_envelope",
    "load_producer_settings",
    "open_context",
    "parse_data_event",
    "process_clock",
    "run_initial_sync",
    "run_producer",
    "source_tables",
    "webhook_app",
]
