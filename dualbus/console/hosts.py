"""Which names the console answers to: a defence against DNS rebinding.

A page of attacker.example whose name the attacker then points at 127.0.0.1 is, to the browser, of the
same origin as the console: it could read a page (and the CSRF token in it) and post the forms,
which a console without a token would take. The browser still names attacker.example in the Host header,
so the console refuses every name it was not told of (starlette's ``TrustedHostMiddleware``).

Only the name is checked, not the port: a rebinding page's Host carries the attacker's name whatever its
port, and an operator who reaches a loopback console through a tunnel (``ssh -L 9000:127.0.0.1:8080``)
sends the tunnel's port, not the console's.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence

from dualbus.shared.errors import ConfigError

__all__ = ["ANY_HOST", "LOOPBACK_NAMES", "answered_hosts", "check_allowed_hosts"]

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
ANY_HOST = "*"
# Listening on every address, the console cannot know by which name browsers reach it.
_EVERY_ADDRESS = frozenset({"0.0.0.0", "[::]"})  # noqa: S104 - compared with, not bound to
_LONGEST_NAME = 253  # characters of a DNS name (RFC 1035)
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DNS_NAME = re.compile(rf"(?:\*\.)?{_LABEL}(?:\.{_LABEL})*")


def _host_name(address: str) -> str:
    """An address or name as a Host header gives it: lower case, an IPv6 address in brackets."""
    bare = address.strip("[]").lower()
    return f"[{bare}]" if ":" in bare else bare


def check_allowed_hosts(names: Sequence[str], *, with_token: bool) -> None:
    """ConfigError naming the first ``--allowed-host`` the console cannot take.

    Without a token it takes none: a name beyond the loopback ones is what a rebinding page would use.
    """
    if names and not with_token:
        raise ConfigError(
            "other host names need a token (--token or DUALBUS_CONSOLE_TOKEN): without one the console "
            "answers only to 127.0.0.1, localhost and [::1]"
        )
    for name in names:
        if not _is_host_name(name):
            raise ConfigError(
                f"{name!r} is not a host name: give the name browsers reach the console by, without "
                "scheme or port (console.example.com, *.example.com, 10.0.0.5, or * for any)"
            )


def _is_host_name(name: str) -> bool:
    if name == ANY_HOST:
        return True
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return len(name) <= _LONGEST_NAME and _DNS_NAME.fullmatch(name.lower()) is not None
    return True


def answered_hosts(bound: str, *, with_token: bool, allowed: Sequence[str] = ()) -> tuple[str, ...]:
    """The Host names a console listening on ``bound`` answers to.

    Always the loopback names and ``bound`` itself, with the ``allowed`` ones; with a token, listening on
    every address (0.0.0.0, ::) and told no name, any name: the token is what guards the console then (a
    rebinding page has no session cookie of the console's name, and cannot send the token).
    """
    if with_token and _host_name(bound) in _EVERY_ADDRESS and not allowed:
        return (ANY_HOST,)
    names = [*LOOPBACK_NAMES, _host_name(bound), *(_host_name(name) for name in allowed)]
    return tuple(dict.fromkeys(names))
