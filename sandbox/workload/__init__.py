"""A deterministic, realistic workload for the twins: seeded master data and a live change stream.

``generate`` makes the data in F&O's shape (``dataverse_reference`` gives Dataverse's reference rows),
``load_fo`` / ``load_fo_store`` / ``load_dataverse`` put it into the twins, ``run_change_stream`` makes
creates, updates, deletes, concurrent edits and changes the other side must refuse, and ``run_sandbox``
starts and seeds both twins for ``dualbus sandbox``.
"""

from sandbox.workload.dataverse_shape import account_from_customer, dataverse_reference
from sandbox.workload.generate import Dataset, RecordFactory, generate
from sandbox.workload.load import WorkloadError, load_dataverse, load_fo, load_fo_store
from sandbox.workload.plan import PlannedChange, StreamConfig, plan_changes
from sandbox.workload.run import SandboxRun, run_sandbox, start_sandbox
from sandbox.workload.stream import StreamSummary, run_change_stream

__all__ = [
    "Dataset",
    "PlannedChange",
    "RecordFactory",
    "SandboxRun",
    "StreamConfig",
    "StreamSummary",
    "WorkloadError",
    "account_from_customer",
    "dataverse_reference",
    "generate",
    "load_dataverse",
    "load_fo",
    "load_fo_store",
    "plan_changes",
    "run_change_stream",
    "run_sandbox",
    "start_sandbox",
]
