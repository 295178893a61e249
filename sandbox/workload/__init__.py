"""A deterministic, realistic workload for the twins: seeded master data and a live change stream.

``generate`` makes the data in F&O's shape (reference data, customers, vendors, contact persons, products);
``dataverse_reference`` / ``dataverse_master`` give the same data in Dataverse's shape, as the table maps
write it; ``load_fo`` / ``load_fo_store`` / ``load_dataverse`` put it into the twins; ``run_change_stream``
makes creates, updates, deletes, concurrent edits and changes the other side must refuse; ``run_sandbox``
starts and seeds both twins for ``dualbus sandbox``. Names of entities, fields, tables and columns are those
of the published schemas in ``d365``; the package imports nothing of the pipeline.
"""

from dualbus.sandbox.workload.dataverse_shape import (
    SHAPES,
    company_ids,
    dataverse_master,
    dataverse_reference,
    shape_row,
)
from dualbus.sandbox.workload.errors import WorkloadError
from dualbus.sandbox.workload.generate import LOAD_ORDER, Dataset, generate
from dualbus.sandbox.workload.kinds import KINDS, RecordRef
from dualbus.sandbox.workload.load import load_dataverse, load_fo, load_fo_store
from dualbus.sandbox.workload.plan import REFUSALS, PlannedChange, StreamConfig, plan_changes
from dualbus.sandbox.workload.records import RecordFactory
from dualbus.sandbox.workload.run import SandboxRun, run_sandbox, start_sandbox
from dualbus.sandbox.workload.stream import StreamSummary, dataverse_path, fo_path, run_change_stream

__all__ = [
    "KINDS",
    "LOAD_ORDER",
    "REFUSALS",
    "SHAPES",
    "Dataset",
    "PlannedChange",
    "RecordFactory",
    "RecordRef",
    "SandboxRun",
    "StreamConfig",
    "StreamSummary",
    "WorkloadError",
    "company_ids",
    "dataverse_master",
    "dataverse_path",
    "dataverse_reference",
    "fo_path",
    "generate",
    "load_dataverse",
    "load_fo",
    "load_fo_store",
    "plan_changes",
    "run_change_stream",
    "run_sandbox",
    "shape_row",
    "start_sandbox",
]
