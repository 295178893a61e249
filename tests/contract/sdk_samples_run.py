"""Running the Python SDK's own published samples unmodified against the emulator (see sdk_samples/python).

Fixtures and helpers for ``test_sdk_samples_sync.py`` and ``test_sdk_samples_async.py``: two modules, so
the two halves run on two workers at once, each with an emulator of its own (the samples share entity names).

Most samples build ``ServiceBusClient(namespace, DefaultAzureCredential())``: AMQP over TLS, verified
against certifi's bundle, with a token from Microsoft Entra ID. Each sample process gets what an operator
gives a host with a private CA and a managed identity, and nothing else:
- trust: a copy of the installed certifi package, its bundle extended with the sandbox CA, first on
  ``PYTHONPATH`` (the SDK reads ``certifi.where()``); ``REQUESTS_CA_BUNDLE`` and ``SSL_CERT_FILE`` name the
  same bundle for azure-identity's and the administration client's HTTPS;
- identity: ``IDENTITY_ENDPOINT`` and ``IDENTITY_HEADER``, the App Service managed identity protocol, served
  by the sandbox's token issuer, whose tokens the emulator verifies on ``$cbs`` and the administration API.
"""

from __future__ import annotations

import os
import pathlib
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator

import certifi
import pytest

from dualbus.sandbox.identity import IdentityServer, TokenIssuer, serve_identity
from dualbus.sandbox.servicebus.config import load_config
from dualbus.sandbox.servicebus.errors import EmulatorStartError
from dualbus.sandbox.servicebus.launcher import EmulatorThread, start_in_process
from dualbus.sandbox.servicebus.sas import DEFAULT_KEY_NAME, DEFAULT_KEY_VALUE

_HERE = pathlib.Path(__file__).resolve().parent / "sdk_samples"
SAMPLES = sorted((_HERE / "python").glob("*_samples/*.py"))
# A sample makes a few connections and round trips; the slowest waits out receive timeouts of 5-10 s.
_TIMEOUT_S = 60
# Where the SDK's TLS client connects (azure/servicebus/_pyamqp/constants.py SECURE_PORT).
_AMQPS_PORT = 5671
_ADDRESS_TRIES = 5
# Samples that cannot run against a local emulator, and why (docs/emulator.md has the same list).
_PROXY = "needs an HTTP proxy and AMQP over WebSockets, which the emulator does not serve"
_PLACEHOLDERS = (
    "names placeholders ('sb://<custom_endpoint_hostname>:<custom_endpoint_port>', "
    "'<your_custom_ca_bundle_file_path>') that the sample expects to be edited"
)
_FOREVER = "iterates a receiver made without max_wait_time: it waits for messages forever, against Azure too"
_SLEEPS = "sleeps 80-100 s three or five times by design, 5-8 minutes, beyond the suite's 10-minute budget"
_CANNOT_RUN = {
    "proxy.py": _PROXY,
    "proxy_async.py": _PROXY,
    "connection_to_custom_endpoint_address.py": _PLACEHOLDERS,
    "connection_to_custom_endpoint_address_async.py": _PLACEHOLDERS,
    # Not run to the end here: they sleep while their locks are renewed (the long "processing" they show).
    "auto_lock_renew.py": _SLEEPS,
    "auto_lock_renew_async.py": _SLEEPS,
    "failure_and_recovery.py": _FOREVER,
    "receive_iterator_queue.py": _FOREVER,
    "receive_iterator_queue_async.py": _FOREVER,
    "client_identity_authentication.py": "the synchronous EnvironmentCredential (MSAL) asks "
    "login.microsoftonline.com to validate any other authority host, which an offline machine cannot reach",
}
# Samples that take EnvironmentCredential itself: a service principal with a client secret.
_CLIENT_SECRET_SAMPLES = {"client_identity_authentication_async.py"}
_CLIENT_ID, _TENANT = "samples-app", "samples-tenant"
_CLIENT_SECRET = secrets.token_urlsafe(16)


@pytest.fixture(scope="module")
def issuer() -> TokenIssuer:
    """The sandbox's stand-in for Entra ID, with one managed identity for the sample processes' host."""
    return TokenIssuer(
        signing_key=secrets.token_urlsafe(32),
        clients={_CLIENT_ID: _CLIENT_SECRET},
        managed_identities=("samples",),
    )


@pytest.fixture(scope="module")
def identity(issuer: TokenIssuer) -> Iterator[IdentityServer]:
    """The issuer's token endpoints over HTTPS."""
    with serve_identity(issuer) as server:
        yield server


@pytest.fixture(scope="module")
def emulator(issuer: TokenIssuer) -> Iterator[EmulatorThread]:
    """An emulator with the entities the samples name, from a Config.json as Microsoft's emulator takes,
    taking the issuer's tokens as Entra ID's.

    The SDK speaks AMQP over TLS to port 5671 whatever port the namespace names, so the emulator listens
    there too, on a loopback address of its own (Linux routes all of 127.0.0.0/8 to the loopback device),
    which keeps parallel runs apart; the namespace's own port is ephemeral and serves the rest.
    """
    config = load_config(_HERE / "Config.json")
    for _ in range(_ADDRESS_TRIES):
        host = "127." + ".".join(str(secrets.randbelow(254) + 1) for _ in range(3))
        try:
            handle = start_in_process(config=config, host=host, entra=issuer, amqps_port=_AMQPS_PORT)
        except EmulatorStartError:
            continue
        with handle:
            yield handle
        return
    pytest.fail(f"no loopback address with port {_AMQPS_PORT} free after {_ADDRESS_TRIES} tries")


@pytest.fixture(scope="module")
def trust(emulator: EmulatorThread, identity: IdentityServer, tmp_path_factory) -> pathlib.Path:
    """A certifi package whose bundle is certifi's own plus the sandbox CAs; returns its parent folder."""
    root = tmp_path_factory.mktemp("trust")
    package = pathlib.Path(certifi.__file__).parent
    shutil.copytree(package, root / "certifi", ignore=shutil.ignore_patterns("__pycache__"))
    bundle = root / "certifi" / "cacert.pem"
    extra = emulator.server.tls.ca_bundle.read_bytes() + identity.ca_bundle.read_bytes()
    bundle.write_bytes(bundle.read_bytes() + b"\n" + extra)
    return root


def _environment(
    emulator: EmulatorThread, identity: IdentityServer, trust: pathlib.Path, sample: pathlib.Path
) -> dict[str, str]:
    bundle = str(trust / "certifi" / "cacert.pem")
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "IDENTITY_", "MSI_"))}
    if sample.name in _CLIENT_SECRET_SAMPLES:
        credential = {
            "AZURE_CLIENT_ID": _CLIENT_ID,
            "AZURE_CLIENT_SECRET": _CLIENT_SECRET,
            "AZURE_TENANT_ID": _TENANT,
            "AZURE_AUTHORITY_HOST": identity.authority,
        }
    else:  # DefaultAzureCredential then finds the managed identity
        credential = {
            "IDENTITY_ENDPOINT": identity.managed_identity_endpoint,
            "IDENTITY_HEADER": identity.identity_header,
        }
    return {
        **inherited,
        **credential,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(trust), os.environ.get("PYTHONPATH")])),
        "REQUESTS_CA_BUNDLE": bundle,
        "SSL_CERT_FILE": bundle,
        "SERVICEBUS_CONNECTION_STR": emulator.connection_string,
        "SERVICEBUS_FULLY_QUALIFIED_NAMESPACE": f"{emulator.host}:{emulator.port}",
        "SERVICEBUS_QUEUE_NAME": "samples-queue",
        "SERVICEBUS_SESSION_QUEUE_NAME": "samples-session-queue",
        "SERVICEBUS_TOPIC_NAME": "samples-topic",
        "SERVICEBUS_SUBSCRIPTION_NAME": "samples-subscription",
        "SERVICEBUS_SESSION_ID": "samples-session",
        "SERVICEBUS_SAS_POLICY": DEFAULT_KEY_NAME,
        "SERVICEBUS_SAS_KEY": DEFAULT_KEY_VALUE,
    }


def runnable(folder: str) -> list[pathlib.Path]:
    """The samples of ``folder`` (sync_samples or async_samples) that the suite runs."""
    return [path for path in SAMPLES if path.parent.name == folder and path.name not in _CANNOT_RUN]


def sample_id(path: pathlib.Path) -> str:
    """A test id naming the sample's folder and file."""
    return f"{path.parent.name}/{path.name}"


def run_sample(
    emulator: EmulatorThread,
    identity: IdentityServer,
    trust: pathlib.Path,
    sample: pathlib.Path,
    cwd: pathlib.Path,
) -> None:
    """Run one sample as its own process; fail with its output unless it exits 0 within the time allowed."""
    done = subprocess.run(  # noqa: S603 - a vendored sample, run by this interpreter
        [sys.executable, str(sample)],
        env=_environment(emulator, identity, trust, sample),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, f"{sample.name} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
