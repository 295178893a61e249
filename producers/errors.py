"""The producers' errors, under dualbus's one root.

::

    DualbusError                      (shared.errors)
    ├── CheckpointError               the checkpoint store cannot be read or written
    │   └── CheckpointUnavailableError  … for now (busy, disk full): also a TransientError, retried
    └── SourceError                   a source answered something the producer cannot use
        └── InvalidDataEventError     a data event payload that no retry can make usable
"""

from __future__ import annotations

from dualbus.producers.checkpoints import CheckpointError, CheckpointUnavailableError
from dualbus.shared.errors import DualbusError

__all__ = ["CheckpointError", "CheckpointUnavailableError", "InvalidDataEventError", "SourceError"]


class SourceError(DualbusError):
    """A source (F&O, Dataverse, a data event) answered something the producer cannot use."""


class InvalidDataEventError(SourceError, ValueError):
    """A data event payload that is malformed: refused (400) or dead-lettered, never retried."""
