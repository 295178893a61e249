"""The ``Prefer`` request header both twins read (RFC 7240, with OData's preferences).

A header holds comma-separated preferences, each a name, an optional ``=value`` and optional parameters
after ``;`` (which no preference the twins read uses): https://www.rfc-editor.org/rfc/rfc7240#section-2. A
value may be a quoted string holding commas, as ``odata.include-annotations="A,B"`` does
(https://learn.microsoft.com/power-apps/developer/data-platform/webapi/query/count-rows).
"""

from __future__ import annotations

import re

__all__ = ["parse_prefer"]

# A quoted string (RFC 9110 section 5.6.4), with its backslash-escaped characters.
_QUOTED = r'"(?:[^"\\]|\\.)*"'
# One preference: everything up to the next comma that is not inside a quoted string.
_PREFERENCE = re.compile(rf'(?:[^,"]|{_QUOTED})+')
# A preference without its parameters: everything up to the first ";" that is not inside a quoted string.
_HEAD = re.compile(rf'(?:[^;"]|{_QUOTED})*')
_ESCAPED = re.compile(r"\\(.)")


def parse_prefer(header: str) -> dict[str, str]:
    """``odata.maxpagesize=10, return=representation`` -> ``{"odata.maxpagesize": "10", ...}``: names in lower
    case, '' for a bare preference, a quoted value unquoted, a preference's parameters left out."""
    preferences: dict[str, str] = {}
    for item in _PREFERENCE.findall(header):
        head = _HEAD.match(item)  # never None: the pattern matches at least the empty start
        name, _, value = (head.group() if head else item).strip().partition("=")
        if name.strip():
            preferences[name.strip().lower()] = _unquoted(value.strip())
    return preferences


def _unquoted(value: str) -> str:
    if len(value) > 1 and value.startswith('"') and value.endswith('"'):
        return _ESCAPED.sub(r"\1", value[1:-1])
    return value
