"""The ``Prefer`` request header both twins read (RFC 7240, with OData's preferences).

A header holds comma-separated preferences, each a name, an optional ``=value`` and optional parameters
after ``;`` (which no preference the twins read uses): https://www.rfc-editor.org/rfc/rfc7240#section-2
"""

from __future__ import annotations

__all__ = ["parse_prefer"]


def parse_prefer(header: str) -> dict[str, str]:
    """``odata.maxpagesize=10, return=representation`` -> ``{"odata.maxpagesize": "10", ...}``: names in lower
    case, '' for a bare preference, a preference's parameters left out."""
    preferences: dict[str, str] = {}
    for item in header.split(","):
        name, _, value = item.split(";")[0].strip().partition("=")
        if name.strip():
            preferences[name.strip().lower()] = value.strip().strip('"')
    return preferences
