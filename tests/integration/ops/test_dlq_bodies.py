"""Every `dualbus dlq` command with every kind of body other clients send: data, value, sequence, odd data.

The messages are sent with the SDK's ``AmqpAnnotatedMessage`` (the way other clients' value and sequence
bodies arrive), dead-lettered by a real receiver, then listed, shown, exported, replayed (from the letters
and from their export) and purged through the CLI against the emulator, all kinds side by side.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from azure.servicebus import ServiceBusClient, ServiceBusSubQueue
from azure.servicebus.amqp import AmqpAnnotatedMessage, AmqpMessageProperties
from typer.testing import CliRunner, Result

from dualbus.cli import app
from dualbus.ops.bodies import BodyKind, MessageBody
from dualbus.ops.dlq import Route, peek_dead_letters
from dualbus.sandbox.servicebus.launcher import EmulatorThread
from tests.contract.conftest import quick_client

pytestmark = pytest.mark.integration

TOPIC = "dualbus.customer"
ROUTE = Route(area="customer", topic=TOPIC, subscription="to-dataverse")
ONLY_ROUTE = ["--area", "customer", "--to", "dataverse"]
REASON = "Unreadable"
_WAIT_S = 5  # bounds every receive; a lock left held would take the route's 60 s to come back


@dataclass(frozen=True)
class Case:
    """A body as sent, and as the dlq tools must read it back."""

    name: str
    sent: dict[str, Any]
    read: MessageBody


CASES = [
    Case("value-int", {"value_body": 42}, MessageBody(BodyKind.VALUE, 42)),
    Case("value-text", {"value_body": "hello"}, MessageBody(BodyKind.VALUE, "hello")),
    Case(
        "value-map",
        {"value_body": {"account": "C-1", "limit": 1500, "tags": ["a", "b"]}},
        MessageBody(BodyKind.VALUE, {"account": "C-1", "limit": 1500, "tags": ["a", "b"]}),
    ),
    Case(
        "value-keys",
        {"value_body": {1: "one", b"\xff": "binary key"}},
        MessageBody(BodyKind.VALUE, {"$map": [[1, "one"], [{"$binary": "/w=="}, "binary key"]]}),
    ),
    # Other clients send 64-bit integers, which the SDK sends only when told their AMQP type.
    Case(
        "value-longs",
        {"value_body": [{"TYPE": "LONG", "VALUE": 2**40}, {"TYPE": "ULONG", "VALUE": 2**64 - 1}]},
        MessageBody(BodyKind.VALUE, [2**40, 2**64 - 1]),
    ),
    Case(
        "sequence",
        {"sequence_body": [[1, "two"], [b"\xff"]]},
        MessageBody(BodyKind.SEQUENCE, [[1, "two"], [{"$binary": "/w=="}]]),
    ),
    Case("data-empty", {"data_body": b""}, MessageBody.data(b"")),
    Case("data-binary", {"data_body": b"\xff\xfe\x00"}, MessageBody.data(b"\xff\xfe\x00")),
    Case("data-text", {"data_body": b"plain text, not JSON"}, MessageBody.data(b"plain text, not JSON")),
    Case("data-json", {"data_body": b'{"a": 1}'}, MessageBody.data(b'{"a": 1}')),
    Case(
        "data-sections",
        {"data_body": [b"part-1", b"part-2"]},
        MessageBody(BodyKind.DATA, (b"part-1", b"part-2")),
    ),
]


def _dead_letter_all(bus: ServiceBusClient, cases: list[Case]) -> str:
    """Publish one message per case, all in one new session, and dead-letter them; the session."""
    session = f"bodies-{uuid.uuid4().hex[:8]}"
    with bus.get_topic_sender(TOPIC) as sender:
        for case in cases:
            properties = AmqpMessageProperties(message_id=case.name, group_id=session)
            message = AmqpAnnotatedMessage(
                properties=properties, application_properties={"origin": "fo"}, **case.sent
            )
            sender.send_messages(message)
    _dead_letter_each(bus, session, len(cases))
    return session


def _dead_letter_each(bus: ServiceBusClient, session: str, count: int) -> dict[str, MessageBody]:
    """Receive ``count`` messages of the session from to-dataverse and dead-letter them; the bodies by case
    name (a replay's message id is its case name with a ``.replay-N`` suffix)."""
    bodies = {}
    deadline = time.monotonic() + _WAIT_S
    # Prefetching spares the keep-alive thread the SDK starts (and joins for a second) without it.
    with bus.get_subscription_receiver(
        TOPIC, ROUTE.subscription, session_id=session, prefetch_count=count
    ) as receiver:
        while len(bodies) < count and (left := deadline - time.monotonic()) > 0:
            for message in receiver.receive_messages(max_message_count=count, max_wait_time=left):
                receiver.dead_letter_message(message, reason=REASON, error_description="cannot read it")
                bodies[str(message.message_id).partition(".replay-")[0]] = MessageBody.of(message)
    return bodies


def _cli(*args: str, exit_code: int = 0) -> Result:
    result = CliRunner().invoke(app, ["dlq", *args])
    assert result.exit_code == exit_code, result.output
    return result


def _exported(bodies: dict[str, MessageBody]) -> dict[str, dict[str, Any]]:
    """Bodies as an export shows them: exact for every body but JSON, which is kept as its document."""
    return {name: body.to_json() for name, body in bodies.items()}


@pytest.fixture
def quick(emulator: EmulatorThread) -> Iterator[ServiceBusClient]:
    """An SDK client for the test's own sends and receives, whose handlers close at once."""
    with quick_client(emulator.connection_string) as client:
        yield client


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The audit log's directory, under the test's temporary path."""
    monkeypatch.setenv("DUALBUS_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "state"


EXPECTED = {case.name: case.read for case in CASES}


@pytest.mark.usefixtures("bus_settings", "state_dir")
def test_list_show_and_export_show_every_body_faithfully(quick: ServiceBusClient, tmp_path: Path) -> None:
    """List counts every letter, show prints each body, and each export line converts back to its body."""
    _dead_letter_all(quick, CASES)
    assert f"{REASON} │ {len(CASES)}" in _cli("list", *ONLY_ROUTE).stdout
    letters = {letter.message_id: letter for letter in peek_dead_letters(quick, ROUTE)}
    shown = {
        name: orjson.loads(_cli("show", str(letter.sequence_number), *ONLY_ROUTE).stdout)
        for name, letter in letters.items()
    }
    assert {name: record["body_kind"] for name, record in shown.items()} == {
        name: body.kind.value for name, body in EXPECTED.items()
    }
    export = tmp_path / "letters.jsonl"
    _cli("export", "-o", str(export), *ONLY_ROUTE)
    records = {record["message_id"]: record for record in map(orjson.loads, export.read_bytes().splitlines())}
    assert records == shown
    read_back = {name: MessageBody.from_json(record) for name, record in records.items()}
    assert _exported(read_back) == _exported(EXPECTED)


@pytest.mark.usefixtures("bus_settings", "state_dir")
def test_replay_and_purge_keep_every_body_and_its_kind(quick: ServiceBusClient, tmp_path: Path) -> None:
    """Replay from an export and from the letters resend each body as it was; purge then removes them all."""
    session = _dead_letter_all(quick, CASES)
    export = tmp_path / "letters.jsonl"
    _cli("export", "-o", str(export), *ONLY_ROUTE)
    everything = f"replayed {len(CASES)} of {len(CASES)}"
    assert everything in _cli("replay", "--from-file", str(export), *ONLY_ROUTE).stdout
    assert _dead_letter_each(quick, session, len(CASES)) == EXPECTED
    assert everything in _cli("replay", "--all", *ONLY_ROUTE).stdout
    assert _dead_letter_each(quick, session, len(CASES)) == EXPECTED
    assert f"purged {len(CASES)} of {len(CASES)}" in _cli("purge", "--all", "--yes", *ONLY_ROUTE).stdout
    assert peek_dead_letters(quick, ROUTE) == []


@pytest.mark.usefixtures("bus_settings", "state_dir")
def test_edit_of_a_value_body_fails_that_letter_and_leaves_it_unlocked(quick: ServiceBusClient) -> None:
    """Editing a value body field by field fails that letter only (and the command: exit 1); it stays
    dead-lettered and unlocked."""
    _dead_letter_all(
        quick, [Case("value-map", {"value_body": {"SalesCurrencyCode": "XXX"}}, EXPECTED["value-map"])]
    )
    result = _cli("replay", "--all", "--set", "data.SalesCurrencyCode=USD", *ONLY_ROUTE, exit_code=1)
    output = " ".join(result.stdout.split())  # rich wraps long lines
    assert "replayed 0 of 1" in output
    assert "cannot be edited field by field" in output
    with quick.get_subscription_receiver(
        TOPIC, ROUTE.subscription, sub_queue=ServiceBusSubQueue.DEAD_LETTER
    ) as receiver:
        (letter,) = receiver.receive_messages(max_message_count=1, max_wait_time=_WAIT_S)
        receiver.complete_message(letter)
