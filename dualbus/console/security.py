"""Who may use the console, and proof that a POST comes from one of its own pages.

- Bound to loopback, the console trusts whoever can reach it (the operator on this machine), unless a token
  is set. Bound to anything else it refuses to start without a token (``require_token``).
- With a token: a request carries it as ``Authorization: Bearer <token>``, or signs in once through the
  login form (token and name), which sets an HttpOnly, SameSite=Strict session cookie.
- A session ends after ``SessionLimits.idle_seconds`` without a request of the operator's (30 minutes; a
  page's own refresh, marked ``X-Dualbus-Refresh``, does not count) and, in any case,
  ``lifetime_seconds`` after sign-in (8 hours); the browser then signs in again. The OWASP Session Management
  Cheat Sheet gives 15-30 minutes idle for a low-risk application, and 4-8 hours absolute for one used
  through an office worker's day: https://cheatsheetseries.owasp.org/cheatsheets/Session_Management_Cheat_Sheet.html
  Without them a signed-in browser on a shared or lost machine stayed signed in while the console ran.
- Every POST from a page carries a CSRF token equal to the ``dualbus_csrf`` cookie (double submit; an other
  site can neither read the cookie nor, with SameSite=Strict, send it). A request authenticated by its
  Authorization header carries no ambient credential, so it needs none. The token is signed with a key the
  console's process makes at start and never shows (``CsrfTokens``): cookies do not keep ports apart, so a
  page served from another port of the same loopback address is the same site, and it can plant a cookie
  of its choosing (its own server's Set-Cookie, or ``document.cookie`` before the console set one). With
  a plain double submit it would then know the token and could post the console's forms; a token it makes
  up fails the signature, and a script cannot read a signed one (HttpOnly cookie; pages of another origin).
  A server of its own on that address is beyond what any cookie can defend against: the browser sends it
  the console's cookies, the session's included. OWASP's "Signed Double-Submit Cookie":
  https://github.com/OWASP/CheatSheetSeries/blob/dafc538920596083ac180c19700cd5acab4e49e9/cheatsheets/Cross-Site_Request_Forgery_Prevention_Cheat_Sheet.md
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import SecretStr
from starlette.requests import Request

from dualbus.shared.errors import ConfigError

__all__ = [
    "CSRF_COOKIE",
    "REFRESH_HEADER",
    "SESSION_COOKIE",
    "CsrfTokens",
    "Identity",
    "SessionLimits",
    "Sessions",
    "bearer_matches",
    "is_loopback",
    "require_token",
    "token_matches",
]

CSRF_COOKIE = "dualbus_csrf"
SESSION_COOKIE = "dualbus_session"
# Sent by a page's own periodic refresh (html._SCRIPT): it does not count as the operator's activity.
REFRESH_HEADER = "x-dualbus-refresh"
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


class CsrfTokens:
    """CSRF tokens signed with this process's own key: a random value and its HMAC-SHA256, taken over the
    session the token is for (its session cookie; none before sign-in).

    Bound to the session as OWASP's signed double submit is: anyone may fetch a signed token (the sign-in
    page hands one out), and a page of the same site (a sibling subdomain of a console served with a token)
    could plant it as the browser's cookie and post with it; one signed for no session, or another, fails.
    """

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)

    def new(self, session: str = "") -> str:
        """A fresh token for a browser, for ``session`` (its session cookie; empty before sign-in)."""
        random = secrets.token_urlsafe(24)
        return f"{self._sign(session, random)}.{random}"

    def signed(self, token: str | None, session: str = "") -> bool:
        """Whether ``token`` is one this process made for ``session`` (a planted, another session's or an
        earlier process's is not)."""
        signature, dot, random = (token or "").partition(".")
        return bool(dot) and hmac.compare_digest(signature.encode(), self._sign(session, random).encode())

    def matches(self, cookie: str | None, submitted: object, session: str = "") -> bool:
        """Whether the form's token is the browser's cookie, and one this process made for ``session``."""
        return (
            isinstance(submitted, str)
            and self.signed(cookie, session)
            and hmac.compare_digest(str(cookie).encode(), submitted.encode())
        )

    def _sign(self, session: str, random: str) -> str:
        return hmac.new(self._key, f"{session}|{random}".encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is acting, as the audit trail names them."""

    name: str
    via_header: bool = False
    session: bool = False


@dataclass(frozen=True, slots=True)
class SessionLimits:
    """How long a signed-in browser stays signed in: without a request, and at most."""

    idle_seconds: float = 30 * 60
    lifetime_seconds: float = 8 * 60 * 60

    def __post_init__(self) -> None:
        if self.idle_seconds <= 0 or self.lifetime_seconds < 1:
            raise ConfigError("a console session needs some idle time and a lifetime of a second or more")


@dataclass(slots=True)
class _Session:
    name: str
    opened: float
    seen: float


@dataclass(slots=True)
class Sessions:
    """Signed-in browsers: a random session id (the cookie) to the name given at sign-in, until it expires."""

    limits: SessionLimits = field(default_factory=SessionLimits)
    # Wall-clock time: a laptop's sleep counts, which the monotonic clock (stopped while suspended) would not.
    clock: Callable[[], float] = time.time
    _sessions: dict[str, _Session] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def open(self, name: str) -> str:
        """A new session for ``name``; its id goes in the cookie. Expired sessions are forgotten meanwhile."""
        session = secrets.token_urlsafe(32)
        now = self.clock()
        with self._lock:
            for expired in [key for key, held in self._sessions.items() if self._expired(held, now)]:
                del self._sessions[expired]
            self._sessions[session] = _Session(name, opened=now, seen=now)
        return session

    def name(self, session: str | None, *, touch: bool = True) -> str | None:
        """The name of a live session, None when there is none or it expired; ``touch`` starts its idle
        time over (an operator's request does, a page's own refresh does not)."""
        if not session:
            return None
        now = self.clock()
        with self._lock:
            held = self._sessions.get(session)
            if held is None:
                return None
            if self._expired(held, now):
                del self._sessions[session]
                return None
            if touch:
                held.seen = now
            return held.name

    def close(self, session: str | None) -> None:
        """Forget a session (sign out)."""
        with self._lock:
            self._sessions.pop(session or "", None)

    def _expired(self, held: _Session, now: float) -> bool:
        limits = self.limits
        return now - held.seen >= limits.idle_seconds or now - held.opened >= limits.lifetime_seconds
