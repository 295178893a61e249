"""The console's operations, real SDK against the emulator: dry runs, checked edits, audited actions."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from azure.servicebus import NEXT_AVAILABLE_SESSION, ServiceBusClient
from pydantic import SecretStr

from dualbus.console.operations import LetterRef, Operations
from dualbus.sandbox.servicebus.config import load_config
from dualbus.sandbox.servicebus.launcher import start_in_process
from dualbus.shared.envelope import Envelope, Operation, Origin
from dualbus.shared.errors import ConfigError
from dualbus.shared.messages import to_message
from dualbus.shared.render import render_emulator_config
from dualbus.shared.settings import ServiceBusSettings, Settings
from dualbus.shared.topology import default_topology

pytestmark = pytest.mark.integration

TOPIC = "dualbus.customer"


@pytest.fixture
def bus() -> Iterator[str]:
    with start_in_process(config=load_config(render_emulator_config(default_topology()))) as emulator:
        yield emulator.connection_string


@pytest.fixture
def operations(bus: str, tmp_path: Path) -> Operations:
    settings = Settings(
        servicebus=ServiceBusSettings(connection_string=SecretStr(bus)), state_dir=tmp_path / "state"
    )
    return Operations(settings)


def _dead_letter(connection: str, accounts: list[str], message_ids: dict[str, str] | None = None) -> None:
    """Publish a customer change per account (under ``message_ids``' id for it, else the envelope's) and
    dead-letter each from to-dataverse."""
    with ServiceBusClient.from_connection_string(connection) as client:
        with client.get_topic_sender(TOPIC) as sender:
            for account in accounts:
                envelope = Envelope.for_change(
                    origin=Origin.FO,
                    area="customer",
                    entity="CustomersV3",
                    key={"dataAreaId": "USMF", "CustomerAccount": account},
                    operation=Operation.UPDATE,
                    source_version=1,
                    time=datetime.now(UTC),
                    company="USMF",
                    data={"CustomerAccount": account, "SalesCurrencyCode": "XXX"},
                )
                sender.send_messages(to_message(envelope, message_id=(message_ids or {}).get(account)))
        for _ in accounts:
            with client.get_subscription_receiver(
                TOPIC, "to-dataverse", session_id=NEXT_AVAILABLE_SESSION, max_wait_time=5
            ) as receiver:
                (message,) = receiver.receive_messages(max_message_count=1, max_wait_time=5)
                receiver.dead_letter_message(message, reason="UnresolvedLookup", error_description="no XXX")


def _refs(operations: Operations) -> list[LetterRef]:
    return [
        LetterRef(x.area, x.subscription, x.sequence_number)
        for x in operations.letters("customer", "to-dataverse", None)
    ]


def test_a_dry_run_shows_each_edit_and_refuses_an_unknown_field(bus, operations):
    _dead_letter(bus, ["C-1", "C-2"])
    refs = _refs(operations)
    assert len(refs) == 2
    good = operations.preview_replay(refs, {"data.SalesCurrencyCode": "USD"})
    assert good.count == 2
    assert all(b'"SalesCurrencyCode":"USD"' in body for body in good.after.values())
    bad = operations.preview_replay(refs, {"data.NoSuchField": 1})
    assert bad.count == 0
    assert all("CustomersV3 does not carry 'NoSuchField'" in text for text in bad.problems.values())
    with pytest.raises(ConfigError, match="nothing replayed"):
        operations.replay(refs, {"data.NoSuchField": 1}, who="alice")
    assert len(_refs(operations)) == 2
    assert operations.audit() == []


def test_replay_and_purge_are_audited_as_the_console_operator(bus, operations):
    _dead_letter(bus, ["C-1", "C-2"])
    first, second = _refs(operations)
    replayed = operations.replay([first], {"data.SalesCurrencyCode": "USD"}, who="alice")
    assert [len(r.done) for r in replayed.values()] == [1]
    purged = operations.purge([second], who="bob")
    assert [len(r.done) for r in purged.values()] == [1]
    assert _refs(operations) == []
    trail = [(x["action"], x["operator"], x["via"]) for x in operations.audit()]
    assert trail == [("dlq.replay", "alice", "console"), ("dlq.purge", "bob", "console")]
    with pytest.raises(ConfigError, match="none of the selected dead-letters is there any more"):
        operations.replay([first], {}, who="alice")


def test_pause_and_resume_show_on_the_routes_and_are_audited(operations):
    operations.set_paused("customer", "to-fo", paused=True, reason="maintenance", who="carol")
    states = {row.name: row.paused for row in operations.routes()}
    assert states["customer/to-fo"] is not None
    assert states["customer/to-fo"].by == "carol"
    assert states["customer/to-dataverse"] is None
    operations.set_paused("customer", "to-fo", paused=False, reason="", who="carol")
    assert all(row.paused is None for row in operations.routes())
    assert [x["action"] for x in operations.audit()] == ["pause", "resume"]
    with pytest.raises(ConfigError, match="no consumer route"):
        operations.set_paused("customer", "unroutable", paused=True, reason="", who="carol")


def test_a_ticked_letter_is_acted_on_alone_not_one_whose_message_id_spells_its_number(bus, operations):
    """Ticked by its sequence number, a letter is purged alone: another letter of the route whose message
    id is those very digits stays."""
    _dead_letter(bus, ["C-1"])
    (first,) = _refs(operations)
    _dead_letter(bus, ["C-2"], message_ids={"C-2": str(first.sequence_number)})
    purged = operations.purge([first], who="bob")
    assert [len(r.done) for r in purged.values()] == [1]
    (left,) = operations.letters("customer", "to-dataverse", None)
    assert left.message_id == str(first.sequence_number)
    assert left.sequence_number != first.sequence_number
