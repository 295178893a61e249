"""The demo's errors, under dualbus's one root.

::

    DualbusError
    └── DemoError        a part of the demo did not start, finish or answer in time; a run directory
                         the demo did not make
"""

from __future__ import annotations

from dualbus.shared.errors import DualbusError

__all__ = ["DemoError"]


class DemoError(DualbusError):
    """A part of the demo did not start, finish or answer in time; the message names the log to read."""
