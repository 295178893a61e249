"""What follows from an immutable object alone, computed once per object and kept while the object lives.

Maps are frozen, so what is derived from one (the fields towards a side, the names a map reads) never
changes; recomputing it for every message is most of a consumer's mapping cost. The memo is keyed by the
object's identity, not by equality: a frozen pydantic model hashes and compares by all its fields (costly
for a whole map, and two equal maps may well be different objects), and nothing is stored on the object
itself, so equality, hashing, copies (``model_copy(update=...)`` builds a new object, with a memo of its own)
and serialisation are exactly those of the model. An entry goes when its object is collected.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

__all__ = ["derived"]

_T = TypeVar("_T")
# id(owner) -> (a weak reference to the owner, what was derived from it by name).
_memos: dict[int, tuple[weakref.ref[Any], dict[Hashable, Any]]] = {}


def derived(owner: object, what: Hashable, compute: Callable[[], _T]) -> _T:
    """``compute()``, called once for ``owner`` and ``what``: ``owner`` must never change, and ``what``
    must name everything besides ``owner`` that the result depends on."""
    entry = _memos.get(id(owner))
    if entry is None or entry[0]() is not owner:
        entry = (weakref.ref(owner, _forget(id(owner))), {})
        _memos[id(owner)] = entry
    memo = entry[1]
    try:
        return memo[what]  # type: ignore[no-any-return]
    except KeyError:
        value = memo[what] = compute()
        return value


def _forget(key: int) -> Callable[[weakref.ref[Any]], None]:
    memos = _memos  # held here: at interpreter exit the module's globals may be gone before the owners

    def forget(ref: weakref.ref[Any]) -> None:
        # Only this reference's own entry: the id may have been taken by a newer object already.
        entry = memos.get(key)
        if entry is not None and entry[0] is ref:
            del memos[key]

    return forget
