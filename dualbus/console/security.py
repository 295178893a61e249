"""Who may use the console, and proof that a POST comes from one of its own pages.

- Bound to loopback, the console trusts whoever can reach it (the operator on this machine), unless a token
  is set. Bound to anything else it refuses to start without a token (``require_token``).
- With a token: a request carries it as ``Authorization: Bearer <token>``, or signs in once through the
  login form (token and name), which sets an HttpOnly, SameSite=Strict session cookie.
- Every POST from a page carries a CSRF token equal to the ``dualbus_csrf`` cookie (double submit; an other
  site can neither read the cookie nor, with SameSite=Strict, send it). A request authenticated by its
  Authorization header carries no ambient credential, so it needs none.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
import threading
from dataclasses import dataclass, field

from pydantic import SecretStr
from starlette.requests import Request

from dualbus.shared.errors import ConfigError

__all__ = [
    "CSRF_COOKIE",
    "SESSION_COOKIE",
    "Identity",
    "Sessions",
    "bearer_matches",
    "csrf_matches",
    "is_loopback",
    "new_csrf",
    "require_token",
    "token_matches",
]

CSRF_COOKIE = "dualbus_csrf"
SESSION_COOKIE = "dualbus_session"
_MIN_TOKEN_LENGTH = 16


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (or ``localhost``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def require_token(host: str, token: SecretStr | None) -> None:
    """ConfigError when the console would listen beyond this machine without a token, or with a weak one."""
    if token is not None and len(token.get_secret_value()) < _MIN_TOKEN_LENGTH:
        raise ConfigError(f"the console token must be at least {_MIN_TOKEN_LENGTH} characters long")
    if token is None and not is_loopback(host):
        raise ConfigError(
            f"the console listens on {host}, beyond this machine: give it a token "
            "(--token or DUALBUS_CONSOLE_TOKEN), or bind to 127.0.0.1"
        )


def bearer_matches(request: Request, token: SecretStr) -> bool:
    """Whether the request's Authorization header carries the token."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and token_matches(value.strip(), token)


def token_matches(given: str, token: SecretStr) -> bool:
    """Whether a token typed into the sign-in form is the console's."""
    return bool(given) and hmac.compare_digest(given.encode(), token.get_secret_value().encode())


def new_csrf() -> str:
    """A fresh CSRF token for a browser."""
    return secrets.token_urlsafe(32)


def csrf_matches(cookie: str | None, submitted: object) -> bool:
    """Whether the form's token equals the browser's cookie."""
    return bool(cookie) and isinstance(submitted, str) and hmac.compare_digest(str(cookie), submitted)


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is acting, as the audit trail names them."""

    name: str
    via_header: bool = False
    session: bool = False


@dataclass(slots=True)
class Sessions:
    """Signed-in browsers: a random session id (the cookie) to the name given at sign-in."""

    _names: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def open(self, name: str) -> str:
        """A new session for ``name``; its id goes in the cookie."""
        session = secrets.token_urlsafe(32)
        with self._lock:
            self._names[session] = name
        return session

    def name(self, session: str | None) -> str | None:
        """The name of a session, None when there is no such session."""
        if not session:
            return None
        with self._lock:
            return self._names.get(session)

    def close(self, session: str | None) -> None:
        """Forget a session (sign out)."""
        with self._lock:
            self._names.pop(session or "", None)
