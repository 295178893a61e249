"""The sandbox's exception root.

::

    SandboxError
    ├── SandboxConfigError(ValueError)   a sandbox configuration (e.g. an emulator Config.json) is wrong
    └── SandboxAuthError                 a token or key is missing, malformed, expired or for another audience
"""

from __future__ import annotations

__all__ = ["SandboxAuthError", "SandboxConfigError", "SandboxError"]


class SandboxError(Exception):
    """Root of every error the sandbox raises on purpose."""


class SandboxConfigError(SandboxError, ValueError):
    """A sandbox configuration is wrong; the message names what and where."""


class SandboxAuthError(SandboxError):
    """A credential is missing, malformed, expired, or meant for another audience."""
