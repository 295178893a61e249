"""The package's one error.

SchemaFileError (ValueError): a schema file is malformed or inconsistent
"""

from __future__ import annotations

__all__ = ["SchemaFileError"]


class SchemaFileError(ValueError):
    """A schema file shipped in this package is malformed or contradicts another."""
