"""The workload's one error.

WorkloadError (SandboxError): loading, shaping or streaming failed in a way the caller must see
"""

from __future__ import annotations

from dualbus.sandbox.errors import SandboxError

__all__ = ["WorkloadError"]


class WorkloadError(SandboxError):
    """Loading, shaping or streaming changes failed in a way the caller must see."""
