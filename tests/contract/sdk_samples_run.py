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

Most samples run to their end (``run_sample``). Some run under tests of their own:
- ``proxy.py`` gets the HTTP CONNECT proxy it hard-codes (``proxy``, ``http_proxy.py``), which makes the SDK
  speak AMQP over WebSockets to the namespace's host on port 443; the proxy tunnels that to the emulator;
- the samples that receive forever (``FOREVER_SAMPLES``) run as processes whose output is read as they go
  (``start_sample``), are fed messages, and are stopped once the output shows them settled;
- the lock renewal samples (``LOCK_RENEWAL_SAMPLES``) sleep 280 s (sync) and 480 s (aio) by design, so each
  starts with its module, against an emulator of its own (``background_sample``: the samples share entity
  names), and runs beside the module's other samples; the module's last test waits for its end.
The rest cannot run here, each for the reason given in ``_CANNOT_RUN``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pathlib
import queue
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator

import certifi
import pytest
from azure.servicebus import ServiceBusClient, ServiceBusMessage

from dualbus.sandbox.identity import IdentityServer, TokenIssuer, serve_identity
from dualbus.sandbox.servicebus.config import load_config
from dualbus.sandbox.servicebus.errors import EmulatorStartError
from dualbus.sandbox.servicebus.launcher import EmulatorThread, start_in_process
from dualbus.sandbox.servicebus.sas import DEFAULT_KEY_NAME, DEFAULT_KEY_VALUE
from tests.contract.http_proxy import ConnectProxy, ProxyLog

_HERE = pathlib.Path(__file__).resolve().parent / "sdk_samples"
SAMPLES = sorted((_HERE / "python").glob("*_samples/*.py"))
# A sample makes a few connections and round trips; the slowest waits out receive timeouts of 5-10 s.
_TIMEOUT_S = 60
# Where the SDK's TLS client connects (azure/servicebus/_pyamqp/constants.py SECURE_PORT).
_AMQPS_PORT = 5671
_ADDRESS_TRIES = 5
# Samples that cannot run against a local emulator, and why (docs/emulator.md has the same list).
_PLACEHOLDERS = (
    "hard-codes placeholders to be edited ('sb://<custom_endpoint_hostname>:<custom_endpoint_port>', "
    "'<your_custom_ca_bundle_file_path>'), read from no variable: the SDK stops at once parsing the port "
    "(ValueError: Port could not be cast to integer value as '<custom_endpoint_port>')"
)
_CANNOT_RUN = {
    "connection_to_custom_endpoint_address.py": _PLACEHOLDERS,
    "connection_to_custom_endpoint_address_async.py": _PLACEHOLDERS,
    "proxy_async.py": "the aio SDK hands aiohttp the proxy without a scheme ('127.0.0.1:8899'), which "
    "aiohttp refuses (InvalidURL) before connecting, against Azure too (Azure/azure-sdk-for-python#40274); "
    "test_sdk_samples_async.py checks that it still fails so",
    "client_identity_authentication.py": "the synchronous EnvironmentCredential (MSAL) asks "
    "login.microsoftonline.com to validate any authority host it does not know (instance discovery), "
    "which an offline machine cannot reach; azure-identity turns that off only through the credential's "
    "disable_instance_discovery argument, which the sample does not pass: neither azure-identity nor MSAL "
    "reads an environment variable for it",
}
# Samples that run unmodified under their own tests, which give them what they need besides the emulator.
PROXY_SAMPLES = ("proxy.py",)  # an HTTP CONNECT proxy at 127.0.0.1:8899
FOREVER_SAMPLES = ("receive_iterator_queue.py", "receive_iterator_queue_async.py", "failure_and_recovery.py")
LOCK_RENEWAL_SAMPLES = ("auto_lock_renew.py", "auto_lock_renew_async.py")
_APART = {*PROXY_SAMPLES, *FOREVER_SAMPLES, *LOCK_RENEWAL_SAMPLES}
# Samples that take EnvironmentCredential itself: a service principal with a client secret.
_CLIENT_SECRET_SAMPLES = {"client_identity_authentication_async.py"}
_CLIENT_ID, _TENANT = "samples-app", "samples-tenant"
QUEUE = "samples-queue"
_CLIENT_SECRET = secrets.token_urlsafe(16)
# The proxy the proxy samples name, with its credentials: written into the samples, not read from anywhere.
PROXY_ADDRESS = ("127.0.0.1", 8899)
_PROXY_USER, _PROXY_PASSWORD = "admin", "123456"
# That port is fixed, and the two halves run on two workers at once (other checkouts' suites may run on
# the same machine too): a lock file among the temporary files makes them take turns at it.
_PROXY_LOCK = pathlib.Path(tempfile.gettempdir()) / "dualbus-sdk-samples-proxy-8899.lock"


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
    """An emulator with the entities the samples name (see ``samples_emulator``)."""
    with samples_emulator(issuer) as handle:
        yield handle


@contextlib.contextmanager
def samples_emulator(issuer: TokenIssuer) -> Iterator[EmulatorThread]:
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
    return trusting(tmp_path_factory.mktemp("trust"), emulator, identity)


def trusting(root: pathlib.Path, emulator: EmulatorThread, identity: IdentityServer) -> pathlib.Path:
    """Write into ``root`` a certifi package trusting the emulator's and the token issuer's CAs too."""
    package = pathlib.Path(certifi.__file__).parent
    shutil.copytree(package, root / "certifi", ignore=shutil.ignore_patterns("__pycache__"))
    bundle = root / "certifi" / "cacert.pem"
    extra = emulator.server.tls.ca_bundle.read_bytes() + identity.ca_bundle.read_bytes()
    bundle.write_bytes(bundle.read_bytes() + b"\n" + extra)
    return root


@pytest.fixture
def proxy(emulator: EmulatorThread) -> Iterator[ProxyLog]:
    """The HTTP CONNECT proxy the proxy samples name, tunnelling to the emulator; yields what it was asked."""
    with _PROXY_LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # waits while another run holds the port (its test is bounded)
        try:
            server = ConnectProxy(
                PROXY_ADDRESS, (emulator.host, emulator.port), username=_PROXY_USER, password=_PROXY_PASSWORD
            )
        except OSError as exc:
            pytest.fail(f"cannot serve the samples' proxy at {PROXY_ADDRESS}: {exc}")
        with server:
            yield server.log


def environment(
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
        "SERVICEBUS_QUEUE_NAME": QUEUE,
        "SERVICEBUS_SESSION_QUEUE_NAME": "samples-session-queue",
        "SERVICEBUS_TOPIC_NAME": "samples-topic",
        "SERVICEBUS_SUBSCRIPTION_NAME": "samples-subscription",
        "SERVICEBUS_SESSION_ID": "samples-session",
        "SERVICEBUS_SAS_POLICY": DEFAULT_KEY_NAME,
        "SERVICEBUS_SAS_KEY": DEFAULT_KEY_VALUE,
    }


def runnable(folder: str) -> list[pathlib.Path]:
    """The samples of ``folder`` (sync_samples or async_samples) that the suite runs."""
    return [
        path
        for path in SAMPLES
        if path.parent.name == folder and path.name not in _CANNOT_RUN and path.name not in _APART
    ]


def sample(folder: str, name: str) -> pathlib.Path:
    """One vendored sample by folder and file name."""
    return _HERE / "python" / folder / name


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
        env=environment(emulator, identity, trust, sample),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, f"{sample.name} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


def run_sample_output(
    emulator: EmulatorThread,
    identity: IdentityServer,
    trust: pathlib.Path,
    sample: pathlib.Path,
    cwd: pathlib.Path,
) -> str:
    """Like ``run_sample``; returns what the sample printed."""
    done = subprocess.run(  # noqa: S603 - a vendored sample, run by this interpreter
        [sys.executable, str(sample)],
        env=environment(emulator, identity, trust, sample),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, f"{sample.name} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


class RunningSample:
    """A sample that does not end by itself, running as its own process; its output read line by line."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.started = time.monotonic()
        self.output = ""
        self._lines: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def wait_for(self, done: Callable[[str], bool], timeout: float = _TIMEOUT_S) -> str:
        """Read the output until ``done`` holds for all of it; fail if the process ends or time runs out."""
        deadline = time.monotonic() + timeout
        while not done(self.output):
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"no such output within {timeout} s; so far:\n{self.output[-3000:]}")
            if line is None:
                self.process.wait()
                pytest.fail(f"the sample ended ({self.process.returncode}):\n{self.output[-3000:]}")
            self.output += line
        return self.output

    def finish(self, within_s: float) -> int:
        """Read the output to the end, which must come within ``within_s`` of the start; the exit status."""
        while True:
            remaining = self.started + within_s - time.monotonic()
            try:
                line = self._lines.get(timeout=max(0.0, remaining))
            except queue.Empty:
                pytest.fail(f"not ended {within_s} s after its start; so far:\n{self.output[-3000:]}")
            if line is None:
                return self.process.wait(timeout=max(1.0, remaining))
            self.output += line

    def stop(self) -> int | None:
        """Terminate the process; return its exit status before that (None: it was still running)."""
        running = self.process.poll()
        self.process.terminate()
        self.process.wait(timeout=10)
        self._reader.join(timeout=10)
        return running


@contextlib.contextmanager
def start_sample(
    emulator: EmulatorThread,
    identity: IdentityServer,
    trust: pathlib.Path,
    sample: pathlib.Path,
    cwd: pathlib.Path,
) -> Iterator[RunningSample]:
    """Start a sample as its own process, its output unbuffered (it is read while the sample runs), and
    terminate it when the block ends; its standard error goes to ``cwd/stderr.txt``."""
    with (cwd / "stderr.txt").open("w") as errors:
        process = subprocess.Popen(  # noqa: S603 - a vendored sample, run by this interpreter
            [sys.executable, str(sample)],
            env={**environment(emulator, identity, trust, sample), "PYTHONUNBUFFERED": "1"},
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        )
    running = RunningSample(process)
    try:
        yield running
    finally:
        if process.poll() is None:
            running.stop()
        if process.stdout is not None:
            process.stdout.close()


def send_to_queue(emulator: EmulatorThread, bodies: list[str]) -> set[str]:
    """Send one message per body to the samples' queue (plain AMQP, the connection string); their ids."""
    ids = [secrets.token_hex(16) for _ in bodies]
    messages = [ServiceBusMessage(body, message_id=i) for body, i in zip(bodies, ids, strict=True)]
    client = ServiceBusClient.from_connection_string(emulator.connection_string)
    with client, client.get_queue_sender(QUEUE) as sender:
        sender.send_messages(messages)
    return set(ids)


def held_message_ids(emulator: EmulatorThread, path: str) -> set[str]:
    """The ids of the messages an entity holds now (active, locked, deferred or scheduled)."""

    def read() -> set[str]:
        entity = emulator.server.bus.entities[path]
        return {m.env.message_id or "" for m in entity.messages.values()}

    ids = emulator.server.call_on_loop(read)
    assert isinstance(ids, set)
    return ids


@contextlib.contextmanager
def background_sample(
    issuer: TokenIssuer, identity: IdentityServer, root: pathlib.Path, sample: pathlib.Path
) -> Iterator[RunningSample]:
    """Start ``sample`` against an emulator of its own (the samples share entity names), to run beside the
    module's other samples; stopped with the block if still running."""
    with samples_emulator(issuer) as own:
        trusted = trusting(root / "trust", own, identity)
        cwd = root / "cwd"
        cwd.mkdir()
        with start_sample(own, identity, trusted, sample, cwd) as running:
            yield running
