"""Shared Access Signature tokens: the keys the emulator accepts and the check of a token against them.

A token is ``SharedAccessSignature sr=<resource>&sig=<signature>&se=<expiry>&skn=<key name>``; the
signature is the Base64 HMAC-SHA256, under the key, of the ``sr`` value exactly as the token carries it (the
SDKs url-encode the resource first, the Python SDK's ``authenticate_using_azure_sas_credential`` sample puts
it raw), a newline and the expiry. See https://learn.microsoft.com/azure/service-bus-messaging/service-bus-sas

A client with a Microsoft Entra ID credential instead puts a JWT on ``$cbs`` (token type ``jwt``) or sends
``Authorization: Bearer <JWT>`` to the administration API; the token is for the audience
``https://servicebus.azure.net`` (the SDK asks for the scope ``https://servicebus.azure.net//.default``,
``JWT_TOKEN_SCOPE`` in ``azure/servicebus/_common/constants.py``). Here such tokens come from the sandbox's
token issuer (``sandbox/identity.py``) and are checked against it: signature, issuer, audience, expiry.
Azure then checks the caller's role assignments; sandbox tokens carry none, so a valid one covers the
whole namespace, as the Azure Service Bus Data Owner role does.

A key holds rights, as a shared access authorization rule does: ``Send``, ``Listen`` and ``Manage``, where
Manage includes the other two (https://learn.microsoft.com/azure/service-bus-messaging/service-bus-sas,
"Rights required for Service Bus operations"). A key given none is the namespace's
``RootManageSharedAccessKey`` kind: all three. An operation a grant's rights do not include is refused with
the service's own words on the wire, condition ``amqp:unauthorized-access`` and "Unauthorized access. 'Listen'
claim(s) are required to perform this operation. Resource: '...'." (a client's trace of a link Azure
detached: https://github.com/Azure/azure-service-bus/issues/258).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import quote_plus, unquote_plus, urlparse

import jwt
from pydantic import SecretStr

from dualbus.sandbox.errors import SandboxAuthError, SandboxConfigError
from dualbus.sandbox.identity import TokenIssuer

__all__ = [
    "DEFAULT_KEY_NAME",
    "DEFAULT_KEY_VALUE",
    "ENTRA_AUDIENCE",
    "KEYS_ENV_VAR",
    "RIGHTS",
    "SAS_PREFIX",
    "Grant",
    "KeyRing",
    "key_rights_from_env",
    "keys_from_env",
    "make_token",
    "permits",
    "resource_path",
    "unauthorized",
]

# The pair Microsoft's own emulator documents, so its connection strings work here unchanged:
# https://learn.microsoft.com/azure/service-bus-messaging/test-locally-with-service-bus-emulator
DEFAULT_KEY_NAME = "RootManageSharedAccessKey"
DEFAULT_KEY_VALUE = "SAS_KEY_VALUE"
KEYS_ENV_VAR = "SERVICEBUS_EMULATOR_KEYS"
# The audience of a Microsoft Entra ID token for Service Bus (the SDK's scope less "/.default").
ENTRA_AUDIENCE = "https://servicebus.azure.net"
_BEARER = "Bearer "
SAS_PREFIX = "SharedAccessSignature "
MANAGE, SEND, LISTEN = "Manage", "Send", "Listen"
RIGHTS = frozenset({MANAGE, SEND, LISTEN})


@dataclass(frozen=True, slots=True)
class Grant:
    """What a verified token allows: ``rights`` on entities under ``path`` (lower case) until ``expiry``."""

    path: str
    expiry: float
    rights: frozenset[str] = RIGHTS

    def allows(self, right: str) -> bool:
        """Whether the grant holds ``right`` (Manage includes Send and Listen)."""
        return right in self.rights or MANAGE in self.rights

    def covers(self, entity_path: str, now: float) -> bool:
        """True if this grant is current and its resource contains ``entity_path``."""
        if now >= self.expiry:
            return False
        if not self.path:
            return True
        target = entity_path.lower().strip("/")
        return target == self.path or target.startswith(self.path + "/")


def permits(grants: Iterable[Grant], path: str, right: str, now: float) -> bool:
    """Whether one of ``grants`` covers ``path`` now and holds ``right``."""
    return any(grant.covers(path, now) and grant.allows(right) for grant in grants)


def resource_path(uri: str) -> str:
    """The entity part of an ``sb://host[:port]/path`` or ``amqps://...`` resource, lower case."""
    parsed = urlparse(uri)
    path = parsed.path if parsed.scheme else uri
    return path.lower().strip("/")


@dataclass(frozen=True, slots=True)
class KeyRing:
    """The named keys tokens are checked against."""

    keys: Mapping[str, SecretStr] = field(
        default_factory=lambda: {DEFAULT_KEY_NAME: SecretStr(DEFAULT_KEY_VALUE)}
    )
    clock: Callable[[], float] = time.time
    # The issuer whose tokens stand for Microsoft Entra ID's; None refuses every JWT.
    entra: TokenIssuer | None = None
    # Each key's rights (module notes); a key not named here holds all three.
    rights: Mapping[str, Collection[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # A right given to a key that does not exist (a typo) would leave the real key holding all three.
        strangers = set(self.rights) - set(self.keys)
        if strangers:
            raise SandboxConfigError(f"rights given to keys that do not exist: {sorted(strangers)}")
        for name, held in self.rights.items():
            unknown = set(held) - RIGHTS
            if unknown or not held:
                raise SandboxConfigError(
                    f"key {name!r}: rights must be some of {sorted(RIGHTS)}, got {sorted(held)}"
                )

    def verify_authorization(self, header: str, audience: str) -> Grant:
        """Check an HTTP ``Authorization`` value: a SAS token, or ``Bearer`` and an Entra ID token."""
        if header.startswith(_BEARER):
            return self.verify_entra(header.removeprefix(_BEARER).strip())
        return self.verify(header, audience)

    def verify_entra(self, token: str) -> Grant:
        """Check a JWT from the sandbox's token issuer for Service Bus; it grants the whole namespace."""
        if self.entra is None:
            raise SandboxAuthError("this emulator has no token issuer: Microsoft Entra ID tokens are refused")
        self.entra.verify(token, audience=ENTRA_AUDIENCE)
        # Verified just above; read again only for the expiry, which the grant keeps.
        claims = jwt.decode(token, options={"verify_signature": False})
        return Grant(path="", expiry=float(claims["exp"]))

    def verify(self, token: str, audience: str) -> Grant:
        """Check ``token`` for ``audience``; return what it grants or raise SandboxAuthError."""
        fields = _parse(token)
        resource, signature, expiry_text = fields.get("sr"), fields.get("sig"), fields.get("se")
        name = fields.get("skn")
        if not (resource and signature and expiry_text and name):
            raise SandboxAuthError("the token lacks one of sr, sig, se, skn")
        key = self.keys.get(name)
        if key is None:
            raise SandboxAuthError(f"unknown shared access key name {name!r}")
        try:
            expiry = int(expiry_text)
        except ValueError as exc:
            raise SandboxAuthError("the token's expiry is not a number") from exc
        # Signed over the text as carried: decoding and re-encoding it would refuse a raw resource.
        expected = _sign(f"{resource}\n{expiry}", key.get_secret_value())
        # As bytes: compare_digest refuses a text with other than ASCII in it (TypeError, not a refusal).
        given = unquote_plus(signature).encode("utf-8", "surrogateescape")
        if not hmac.compare_digest(expected.encode(), given):
            raise SandboxAuthError("the token's signature does not match the key")
        if expiry <= self.clock():
            raise SandboxAuthError("the token has expired")
        granted = resource_path(unquote_plus(resource))
        wanted = resource_path(audience)
        if granted and not (wanted == granted or wanted.startswith(granted + "/")):
            raise SandboxAuthError(f"the token is for {resource!r}, not {audience!r}")
        return Grant(path=granted, expiry=float(expiry), rights=frozenset(self.rights.get(name, RIGHTS)))


def _parse(token: str) -> dict[str, str]:
    """The token's fields, values left as written (the first of a repeated field wins)."""
    if not token.startswith(SAS_PREFIX):
        raise SandboxAuthError("not a SharedAccessSignature token")
    fields: dict[str, str] = {}
    for item in token[len(SAS_PREFIX) :].split("&"):
        name, _, value = item.partition("=")
        fields.setdefault(name.strip(), value)
    return fields


def _sign(text: str, key: str) -> str:
    digest = hmac.new(key.encode(), text.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def _signature(resource: str, expiry: int, key: str) -> str:
    """The signature the SDKs make: over the url-encoded resource."""
    return _sign(f"{quote_plus(resource)}\n{expiry}", key)


def make_token(resource: str, key_name: str, key: str, expiry: int) -> str:
    """A SAS token for ``resource``, as an SDK would make it (for tests and other clients)."""
    signature = _signature(resource, expiry, key)
    return "SharedAccessSignature " + "&".join(
        [f"sr={quote_plus(resource)}", f"sig={quote_plus(signature)}", f"se={expiry}", f"skn={key_name}"]
    )


def keys_from_env(environ: Mapping[str, str] | None = None) -> dict[str, SecretStr]:
    """Keys from ``SERVICEBUS_EMULATOR_KEYS`` (``name=value;name[Listen,Send]=value``), or the default."""
    entries = _key_entries(environ)
    if not entries:
        return {DEFAULT_KEY_NAME: SecretStr(DEFAULT_KEY_VALUE)}
    return {name: value for name, (value, _) in entries.items()}


def key_rights_from_env(environ: Mapping[str, str] | None = None) -> dict[str, frozenset[str]]:
    """The rights ``SERVICEBUS_EMULATOR_KEYS`` gives its keys in brackets (``name[Listen]=value``); a key
    without brackets is not named, and holds all three."""
    return {name: rights for name, (_, rights) in _key_entries(environ).items() if rights is not None}


def _key_entries(environ: Mapping[str, str] | None) -> dict[str, tuple[SecretStr, frozenset[str] | None]]:
    raw = (os.environ if environ is None else environ).get(KEYS_ENV_VAR, "")
    entries: dict[str, tuple[SecretStr, frozenset[str] | None]] = {}
    for item in filter(None, (part.strip() for part in raw.split(";"))):
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise SandboxConfigError(f"{KEYS_ENV_VAR}: expected name=value, got an entry without '='")
        name, rights = _named_rights(name.strip())
        entries[name] = (SecretStr(value.strip()), rights)
    return entries


def _named_rights(name: str) -> tuple[str, frozenset[str] | None]:
    """``name[Listen,Send]`` as the name and its rights; a bare name has none given."""
    if not name.endswith("]"):
        return name, None
    bare, _, listed = name[:-1].partition("[")
    rights = frozenset(part.strip() for part in listed.split(",") if part.strip())
    if not bare or not rights or not rights <= RIGHTS:
        raise SandboxConfigError(
            f"{KEYS_ENV_VAR}: {name!r}: expected name[rights] with rights among {sorted(RIGHTS)}"
        )
    return bare, rights


def unauthorized(right: str, resource: str) -> str:
    """The service's words for an operation that needs ``right`` on ``resource``."""
    required = f"'{right}' claim(s) are required to perform this operation"
    return f"Unauthorized access. {required}. Resource: '{resource}'."
