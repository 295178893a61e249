"""A twin of the Dataverse Web API subset dualbus uses, served over real HTTP.

Start one with :func:`start_dataverse`, or mount :func:`create_app` yourself. :data:`TABLES` are exactly the
tables of ``d365/dataverse`` (each with dualbus's prerequisite column), and writes are checked against them as
the real service checks them; requests are authenticated with sandbox bearer tokens and throttled per user by
the documented service protection limits unless ``limits=None``.
"""

from __future__ import annotations

from dualbus.sandbox.dataverse.app import create_app
from dualbus.sandbox.dataverse.errors import DataverseApiError
from dualbus.sandbox.dataverse.limits import ServiceProtectionLimits
from dualbus.sandbox.dataverse.server import DEFAULT_AUDIENCE, RunningDataverse, start_dataverse
from dualbus.sandbox.dataverse.tables import TABLES

__all__ = [
    "DEFAULT_AUDIENCE",
    "TABLES",
    "DataverseApiError",
    "RunningDataverse",
    "ServiceProtectionLimits",
    "create_app",
    "start_dataverse",
]
