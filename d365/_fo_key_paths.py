"""The ``A='x',B=5`` inside an F&O key path, encoded as F&O reads a path that comes straight over HTTP.

F&O's web front decodes a request's path once before it routes it, so a key's ``/`` or ``\\`` sent as
``%2F`` / ``%5C`` has become a path separator by then: no route matches and F&O answers 404 "No HTTP
resource was found that matches the request URI '.../data/ProductsV2(ProductNumber='105E11/74N')'. No route
data was found for this request." Its OData layer then decodes the key a second time. A key holding a slash,
a backslash or a plus sign is found only with those characters encoded twice (``%252F``, ``%255C``,
``%252B``). Microsoft documents neither step; both are shown by integrators of the real service:
https://www.essrocks.io/post/d365-f-o-odata-slashes-pluses-and-double-encoding
https://cloudeya.org/2020/03/04/microsoft-dynamics-365fo/
A second decode also reads a ``%`` that arrived once-decoded as the start of an escape, so a key's own ``%``
goes twice-encoded too. A ``$filter`` is not routed, and both sources find such a row by a once-encoded
``$filter``, which is how dualbus reads rows. Other characters that need encoding (a space, ``#``, ``?``)
read the same after one decode or two, so they go encoded once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import quote

from dualbus.d365._fo import FoEntity
from dualbus.d365._fo_literals import fo_key_literals

__all__ = ["fo_key_encoded_twice", "fo_key_segment"]

# Quotes, '=' and ',' are key syntax and stay as they are.
_KEY_SAFE = "'=,"
_ONCE_ENCODED_TWICE = re.compile("%(2F|5C|2B|25)")


def fo_key_segment(entity: FoEntity, key: Mapping[str, object]) -> str:
    """``A='x',B=5`` for a key path, each value a literal of its field's type (``fo_key_literals``),
    URL-encoded once, and twice where F&O decodes the character before routing (``/ \\ + %``)."""
    literals = fo_key_literals(entity, key)
    return ",".join(f"{name}={_encoded(literal)}" for name, literal in literals.items())


def fo_key_encoded_twice(segment: str) -> bool:
    """Whether a segment ``fo_key_segment`` made holds a character encoded twice, which only a request of
    its own can carry: how F&O decodes a key path inside a ``$batch`` part (not routed by its web front) is
    not published. Once encoded, every ``%`` starts an escape and a ``%`` of the value is ``%25`` itself
    encoded again, so ``%25`` shows exactly where ``_encoded`` encoded twice (a number's ``1e+20`` too)."""
    return "%25" in segment


def _encoded(literal: str) -> str:
    return _ONCE_ENCODED_TWICE.sub(r"%25\1", quote(literal, safe=_KEY_SAFE))
