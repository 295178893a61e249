"""The Python SDK's published sync samples, run unmodified against the emulator (see sdk_samples_run.py).

28 of the 30: most to their end; proxy.py through the HTTP proxy it names, over AMQP over WebSockets;
receive_iterator_queue.py and failure_and_recovery.py, which receive forever, until what they were sent
is settled; auto_lock_renew.py, which sleeps 280 s by design, beside the others from the module's start.
Not run, with the reasons in sdk_samples_run.py: connection_to_custom_endpoint_address.py,
client_identity_authentication.py.

auto_lock_renew.py's two tests hold a worker for five and a half minutes, a third of the suite's budget, so
they are marked ``sleeps`` and run with ``--with-sleeps`` only (tests/conftest.py), as the aio module's are.
"""

from __future__ import annotations

import pathlib
import secrets
from collections.abc import Iterator

import pytest

from dualbus.sandbox.identity import IdentityServer, TokenIssuer
from dualbus.sandbox.servicebus.launcher import EmulatorThread
from tests.contract import sdk_samples_run
from tests.contract.http_proxy import ProxyLog
from tests.contract.sdk_samples_run import (
    QUEUE,
    SAMPLES,
    RunningSample,
    background_sample,
    held_message_ids,
    run_sample,
    run_sample_output,
    runnable,
    sample,
    sample_id,
    send_to_queue,
    start_sample,
)

pytestmark = [pytest.mark.contract]
# auto_lock_renew.py: three parts sleeping 100, 100 and 80 s, each after a receive waiting up to 5 s.
_LOCK_RENEWAL_S = 420

# The module-scoped fixtures, one set for this module: an emulator of its own.
issuer = sdk_samples_run.issuer
identity = sdk_samples_run.identity
emulator = sdk_samples_run.emulator
trust = sdk_samples_run.trust
proxy = sdk_samples_run.proxy


@pytest.fixture(scope="module")
def lock_renewal(issuer: TokenIssuer, identity: IdentityServer, tmp_path_factory) -> Iterator[RunningSample]:
    """auto_lock_renew.py, running from the module's first test (it sleeps 280 s by design)."""
    root = tmp_path_factory.mktemp("lock-renewal")
    with background_sample(issuer, identity, root, sample("sync_samples", "auto_lock_renew.py")) as running:
        yield running


@pytest.mark.sleeps
def test_lock_renewal_sample_starts(lock_renewal: RunningSample):
    """auto_lock_renew.py sends and registers its ten messages; the module's last test sees it end."""
    lock_renewal.wait_for(lambda out: "Register messages into AutoLockRenewer done." in out)


def test_samples_are_present():
    """All of the release's samples are vendored (a lost folder must not pass as zero tests)."""
    folders = [path.parent.name for path in SAMPLES]
    assert (folders.count("sync_samples"), folders.count("async_samples")) == (30, 28)


@pytest.mark.parametrize("sample", runnable("sync_samples"), ids=sample_id)
def test_published_sample_runs_unmodified(
    emulator: EmulatorThread, identity: IdentityServer, trust: pathlib.Path, sample: pathlib.Path, tmp_path
):
    """The sample exits 0 against the emulator."""
    run_sample(emulator, identity, trust, sample, tmp_path)


def test_proxy_sample_goes_through_the_http_proxy_it_names(
    emulator: EmulatorThread, identity: IdentityServer, trust: pathlib.Path, proxy: ProxyLog, tmp_path
):
    """proxy.py sends through the HTTP proxy it hard-codes (127.0.0.1:8899, Basic admin/123456), which
    makes the SDK speak AMQP over WebSockets: it asked the proxy for the namespace's host on port 443, the
    emulator took the WebSocket, and the message is in the queue."""
    before = held_message_ids(emulator, QUEUE)
    output = run_sample_output(emulator, identity, trust, sample("sync_samples", "proxy.py"), tmp_path)
    assert "Send message is done." in output
    assert set(proxy.targets) == {f"{emulator.host}:443"}
    assert proxy.refused == 0
    assert len(held_message_ids(emulator, QUEUE) - before) == 1


def test_receive_iterator_sample_takes_messages_until_stopped(
    emulator: EmulatorThread, identity: IdentityServer, trust: pathlib.Path, tmp_path
):
    """receive_iterator_queue.py iterates a receiver made without max_wait_time: it waits for messages
    forever (against Azure too). It runs unmodified until it has printed and completed what was sent to
    it, then is stopped. It prints a message before completing it and completes it before taking the
    next, so once a last message is printed the ones before it are settled."""
    bodies = [f"iterated {n} {secrets.token_hex(4)}" for n in range(3)]
    last = f"last {secrets.token_hex(4)}"
    with start_sample(
        emulator, identity, trust, sample("sync_samples", "receive_iterator_queue.py"), tmp_path
    ) as running:
        ids = send_to_queue(emulator, bodies)
        running.wait_for(lambda out: all(body in out.splitlines() for body in bodies))
        send_to_queue(emulator, [last])
        running.wait_for(lambda out: last in out.splitlines())
        assert running.stop() is None  # still waiting for more
    assert not held_message_ids(emulator, QUEUE) & ids


def test_failure_and_recovery_sample_sends_then_receives_until_stopped(
    emulator: EmulatorThread, identity: IdentityServer, trust: pathlib.Path, tmp_path
):
    """failure_and_recovery.py sends ten messages in a batch, then receives with an iterator made without
    max_wait_time, so it never ends by itself. It runs unmodified until it has printed all ten; one more
    message, sent then and printed after them, shows that the ten were completed; then it is stopped."""
    before = held_message_ids(emulator, QUEUE)
    last = f"last {secrets.token_hex(4)}"
    with start_sample(
        emulator, identity, trust, sample("sync_samples", "failure_and_recovery.py"), tmp_path
    ) as running:
        ten = {f"Data {n}" for n in range(10)}
        output = running.wait_for(lambda out: ten <= set(out.splitlines()))
        assert output.startswith("Opening\nSending\nReceiving\n")
        sentinel = send_to_queue(emulator, [last])
        running.wait_for(lambda out: last in out.splitlines())
        assert running.stop() is None
    assert not held_message_ids(emulator, QUEUE) - before - sentinel


@pytest.mark.sleeps
@pytest.mark.timeout(_LOCK_RENEWAL_S + 30)
def test_lock_renewal_sample_runs_to_its_end(lock_renewal: RunningSample):
    """Last in the module: auto_lock_renew.py exits 0. Its renewer kept ten message locks (60 s each) for
    100 s, then a session's, so both were completed after the sleep; its last part lets a lock lapse on
    purpose (a renewer passing every 40 s; whether the lock has lapsed when the sample settles at 80 s
    depends on the renewer's threads, so only its end is checked)."""
    assert lock_renewal.finish(_LOCK_RENEWAL_S) == 0, lock_renewal.output
    output = lock_renewal.output
    lines = output.splitlines()
    assert lines.count("Complete messages.") == 2, output
    assert "Lock renew failure demonstration complete." in lines, output
