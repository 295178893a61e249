"""F&O holds no null: a field never written, or written null, reads as its type's empty value.

X++ fields always have a value (``FoField.empty_value`` has the sources): an empty string, 0, the date
1900-01-01. So F&O answers ``""`` for a customer's unset e-mail and ``0`` for an unset credit limit, and a
filter on such a field compares that value. The twin stores only what was written (a row of every field
would cost an initial sync of half a million customers gigabytes) and fills in the rest when it answers or
compares. A null written to a field that may be null (OData lets it through) is stored as the empty value.

An enum's empty value is its element of value 0 (``"No"`` of NoYes and CustVendorBlocked). Where the enum's
values are not published, ``empty_value`` does not know it, and such a field never written reads null here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from dualbus.d365 import FoEntity

__all__ = ["Filled", "filled_row", "selected_fields", "stored_value"]

Row = dict[str, Any]


def stored_value(entity: FoEntity, name: str, value: Any) -> Any:  # noqa: ANN401 - any JSON value
    """What F&O keeps when ``value`` is written to field ``name``: a null becomes the field's empty value."""
    if value is not None:
        return value
    field = entity.fields.get(name)
    return None if field is None else field.empty_value


def filled_row(entity: FoEntity, row: Mapping[str, Any]) -> Row:
    """The row as F&O answers it: every field of the entity, the unwritten ones with their empty value.

    ``entity`` is one of the twin's (``ENTITIES``): they carry dualbus's extension fields, as deployed (the
    stored rows hold them on a twin started with ``prepared=False`` as well; its requests cannot name them).
    """
    filled: Row = {}
    for name, field in entity.fields.items():
        value = row.get(name)
        filled[name] = field.empty_value if value is None else value
    for name, value in row.items():
        filled.setdefault(name, value)  # the ETag, and anything the row holds beyond the entity's fields
    return filled


def selected_fields(entity: FoEntity, rows: Iterable[Mapping[str, Any]], names: Sequence[str]) -> list[Row]:
    """The ``names`` of each row as F&O answers them (a ``$select``): a field never written, its empty value.

    A page of an initial sync is thousands of rows: the empty values are looked up once, not per row.
    """
    empties = [
        (name, None if (field := entity.fields.get(name)) is None else field.empty_value) for name in names
    ]
    return [
        {name: empty if (value := row.get(name)) is None else value for name, empty in empties}
        for row in rows
    ]


class Filled(Mapping[str, Any]):
    """A stored row read as F&O reads it, without copying it: an unwritten field gives its empty value."""

    __slots__ = ("_fields", "row")

    def __init__(self, entity: FoEntity, row: Row) -> None:
        """Read ``row``, a row of ``entity``."""
        self._fields = entity.fields
        self.row = row

    def __getitem__(self, name: str) -> Any:  # noqa: ANN401 - any JSON value
        value = self.row.get(name)
        if value is not None:
            return value
        field = self._fields.get(name)
        if field is None:
            if name in self.row:
                return None
            raise KeyError(name)
        return field.empty_value

    def __iter__(self) -> Iterator[str]:
        yield from self._fields
        yield from (name for name in self.row if name not in self._fields)

    def __len__(self) -> int:
        return len(self._fields) + sum(1 for name in self.row if name not in self._fields)
