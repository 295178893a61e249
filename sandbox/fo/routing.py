"""How F&O reads a key path that comes straight over HTTP, not inside a ``$batch`` (sources in
``d365/_fo_key_paths.py``).

Its web front decodes the path once and routes it: a ``/`` or ``\\`` in the key, sent as ``%2F`` / ``%5C``,
is a path separator by then, so no route matches and the answer is the web front's own 404 (a ``Message``,
not an OData error). The OData layer then decodes the key a second time, as a form value: a bare ``+`` reads
as a space, which is why a once-encoded plus sign does not find its row and a twice-encoded one does.
A ``$batch`` part is not routed by the web front; how F&O decodes its key is not published, so the twin
reads it decoded once (``sandbox/fo/batch.py``) and dualbus sends no such key in a batch.
"""

from __future__ import annotations

from urllib.parse import unquote_plus

from starlette.responses import JSONResponse

__all__ = ["no_route", "read_again", "unroutable"]

_NOT_FOUND = 404
_SEPARATORS = frozenset("/\\")


def unroutable(resource: str) -> bool:
    """Whether the once-decoded ``resource`` (``Entity(key)``) holds a path separator inside its key."""
    key = resource[resource.find("(") + 1 : resource.rfind(")")] if "(" in resource else ""
    return not _SEPARATORS.isdisjoint(key)


def read_again(resource: str) -> str:
    """``resource`` after the OData layer's own decode."""
    return unquote_plus(resource) if "(" in resource else resource


def no_route(url: str) -> JSONResponse:
    """The web front's answer to a path no route matches, naming the once-decoded ``url``."""
    message = (
        f"No HTTP resource was found that matches the request URI '{url}'. "
        "No route data was found for this request."
    )
    return JSONResponse({"Message": message}, status_code=_NOT_FOUND)
