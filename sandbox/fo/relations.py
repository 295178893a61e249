"""The foreign keys F&O validates on write: a written reference must name an existing related row.

Each entity's ``relations`` (from ``d365/fo``) map local fields to a related entity set's fields. When a
create or update writes a relation's fields and all of them are non-empty, the related row must exist; for a
company-specific pair, in the written row's company. Otherwise F&O's table validation (validateField) fails
and the write is refused with the Infolog in the inner message, in the shape of this real F&O response:
https://github.com/sebasdiaz/Chacomer_NextGen/blob/8c58d61219297c998e452fe1fcc33af73009ed11/tests/AxxonCustomers.Functions.Tests/FoODataExceptionTests.cs
("Write failed for table row of type 'CustCustomerV3Entity'. Infolog: Warning: The value 'Local' in field
'Customer group' is not found in the related table 'Customer groups'.; Warning: validateField failed on field
'CustCustomerV3Entity.CustomerGroupId'."). Labels come from the schema when it has them, else the names are
used. The HTTP status that body came with is unconfirmed: the twin answers 400.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from dualbus.d365 import FoEntity, FoRelation
from dualbus.sandbox.fo.entities import ENTITIES
from dualbus.sandbox.fo.errors import RefusedError
from dualbus.sandbox.fo.validation import WRITE_EXCEPTION

__all__ = ["Exists", "check_relations"]

# Whether a row of the named entity set has these field values (compared as key fields are).
Exists = Callable[[str, Mapping[str, Any]], bool]


def check_relations(entity: FoEntity, row: Mapping[str, Any], written: Iterable[str], exists: Exists) -> None:
    """Raise RefusedError when a relation among the ``written`` fields names no existing row."""
    touched = set(written)
    for relation in entity.relations:
        values = [row.get(local) for local in relation.fields]
        if touched.isdisjoint(relation.fields) or any(v is None or v == "" for v in values):
            continue
        if not exists(relation.entity_set, _related_match(entity, relation, row)):
            raise RefusedError(_infolog(entity, relation, row), inner_type=WRITE_EXCEPTION)


def _related_match(entity: FoEntity, relation: FoRelation, row: Mapping[str, Any]) -> dict[str, Any]:
    """The values the related row must have: the relation's fields, and the company when both need one."""
    match = {theirs: row.get(ours) for ours, theirs in relation.fields.items()}
    if entity.company_specific and ENTITIES[relation.entity_set].company_specific:
        match["dataAreaId"] = row.get("dataAreaId")
    return match


def _infolog(entity: FoEntity, relation: FoRelation, row: Mapping[str, Any]) -> str:
    local = next(iter(relation.fields))
    field_label = entity.fields[local].label or local
    table_label = ENTITIES[relation.entity_set].label or relation.entity_set
    return (
        f"Write failed for table row of type '{entity.aot_name}'. Infolog: Warning: The value "
        f"'{row.get(local)}' in field '{field_label}' is not found in the related table '{table_label}'.; "
        f"Warning: validateField failed on field '{entity.aot_name}.{local}'."
    )
