"""The producers' errors, under dualbus's one root.

::

    DualbusError                      (shared.errors)
    ├── CheckpointError               the checkpoint store cannot be read or written
    └── SourceError                   a source answered something the producer cannot use
"""

from __future__ import annotations

from producers.checkpoints import CheckpointError
from shared.errors import DualbusError

__all__ = ["CheckpointError", "SourceError"]


class SourceError(DualbusError):
    """A source (F&O, Dataverse, a data event) answered something the producer cannot use."""
