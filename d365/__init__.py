"""The published contracts of Dynamics 365 F&O and Dataverse, as data with their public sources.

``fo_entities()`` and ``dataverse_tables()`` return the entities and tables described in ``fo/`` and
``dataverse/`` (see README.md). The table maps are validated against them and the local twins are built
from them. dualbus's own prerequisites (extension fields and columns) are in ``_prerequisites``.
Imports nothing of dualbus: the pipeline and the twins both read it.
"""

from __future__ import annotations

from dualbus.d365._dataverse import DvColumn, DvKey, DvTable, Problem, lookup_value_column
from dualbus.d365._errors import SchemaFileError
from dualbus.d365._fo import FO_NAMESPACE, FoEntity, FoField, FoRelation
from dualbus.d365._fo_key_paths import fo_key_encoded_twice, fo_key_segment
from dualbus.d365._fo_literals import fo_key_filter, fo_key_literals, fo_literal
from dualbus.d365._load import dataverse_tables, fo_entities
from dualbus.d365._prerequisites import (
    DATAVERSE_VERSION_COLUMN,
    DV_EXTENSION_COLUMNS,
    FO_EXTENSION_FIELDS,
    FO_VERSION_FIELD,
    FO_WRITE_DIGEST_FIELD,
    fo_deployed_fields,
)

__all__ = [
    "DATAVERSE_VERSION_COLUMN",
    "DV_EXTENSION_COLUMNS",
    "FO_EXTENSION_FIELDS",
    "FO_NAMESPACE",
    "FO_VERSION_FIELD",
    "FO_WRITE_DIGEST_FIELD",
    "DvColumn",
    "DvKey",
    "DvTable",
    "FoEntity",
    "FoField",
    "FoRelation",
    "Problem",
    "SchemaFileError",
    "dataverse_tables",
    "fo_deployed_fields",
    "fo_entities",
    "fo_key_encoded_twice",
    "fo_key_filter",
    "fo_key_literals",
    "fo_key_segment",
    "fo_literal",
    "lookup_value_column",
]
