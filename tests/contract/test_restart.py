"""Persistence: the emulator killed with SIGKILL comes back on the same data directory with every message."""

from __future__ import annotations

import datetime
import json
import pathlib

import pytest
from azure.servicebus import ServiceBusMessage, ServiceBusSubQueue

from dualbus.sandbox.servicebus.launcher import start_subprocess
from tests.contract.conftest import quick_client

pytestmark = pytest.mark.contract

_CONFIG = {
    "UserConfig": {
        "Namespaces": [
            {
                "Name": "sbemulatorns",
                "Queues": [
                    {"Name": "durable", "Properties": {"LockDuration": "PT5S", "MaxDeliveryCount": 5}},
                    {"Name": "durable-sessions", "Properties": {"RequiresSession": True}},
                    {
                        "Name": "durable-dedup",
                        "Properties": {
                            "RequiresDuplicateDetection": True,
                            "DuplicateDetectionHistoryTimeWindow": "PT5M",
                        },
                    },
                ],
                "Topics": [],
            }
        ],
        "Logging": {"Type": "Console"},
    }
}


def _config_and_data_dir(tmp_path: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    """The emulator's Config.json written under ``tmp_path``, and the data directory to share across runs."""
    config = tmp_path / "Config.json"
    config.write_text(json.dumps(_CONFIG))
    return config, tmp_path / "data"


def test_kill_and_restart_keeps_messages_dead_letters_and_session_state(tmp_path):
    """After kill -9 and a restart on the same data dir, messages, dead letters and session state survive."""
    config, data = _config_and_data_dir(tmp_path)
    first = start_subprocess(config_file=config, data_dir=data)
    try:
        with quick_client(first.connection_string) as client:
            with client.get_queue_sender("durable") as sender:
                sender.send_messages([ServiceBusMessage(f"m{i}") for i in range(50)])
            with client.get_queue_sender("durable-sessions") as sender:
                sender.send_messages(ServiceBusMessage("s", session_id="keep"))
            with client.get_queue_receiver("durable") as receiver:
                locked = receiver.receive_messages(max_message_count=2, max_wait_time=5)
                receiver.dead_letter_message(locked[0], reason="Kept", error_description="across restart")
                # locked[1] stays locked when the process dies: a restart must free it.
            with client.get_queue_receiver("durable-sessions", session_id="keep") as receiver:
                receiver.session.set_state(b"state-1")
    finally:
        first.kill()
    second = start_subprocess(config_file=config, data_dir=data)
    try:
        with quick_client(second.connection_string) as client:
            received = []
            with client.get_queue_receiver("durable", prefetch_count=50) as receiver:
                while len(received) < 49:
                    batch = receiver.receive_messages(max_message_count=50, max_wait_time=3)
                    assert batch, f"only {len(received)} of 49 messages came back"
                    for message in batch:
                        receiver.complete_message(message)
                    received += [str(m) for m in batch]
            assert sorted(received) == sorted(f"m{i}" for i in range(1, 50))
            with client.get_queue_receiver("durable", sub_queue=ServiceBusSubQueue.DEAD_LETTER) as dlq:
                [dead] = dlq.receive_messages(max_wait_time=3)
                assert (str(dead), dead.dead_letter_reason) == ("m0", "Kept")
            with client.get_queue_receiver("durable-sessions", session_id="keep") as receiver:
                assert receiver.session.get_state() == b"state-1"
                [message] = receiver.receive_messages(max_wait_time=3)
                assert str(message) == "s"
            with client.get_queue_sender("durable") as sender:
                sender.send_messages(ServiceBusMessage("after"))
            with client.get_queue_receiver("durable") as receiver:
                [after] = receiver.receive_messages(max_wait_time=3)
                assert after.sequence_number > 51
    finally:
        second.stop()
    assert second.process.returncode == 0


def test_kill_and_restart_keeps_deferred_scheduled_and_duplicate_history(tmp_path):
    """Deferred and scheduled messages and the duplicate-detection history survive kill -9 and a restart."""
    config, data = _config_and_data_dir(tmp_path)
    first = start_subprocess(config_file=config, data_dir=data)
    try:
        with quick_client(first.connection_string) as client:
            with client.get_queue_sender("durable-dedup") as sender:
                sender.send_messages(ServiceBusMessage("original", message_id="once"))
                when = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=3)
                [scheduled] = sender.schedule_messages(ServiceBusMessage("scheduled"), when)
            with client.get_queue_receiver("durable-dedup") as receiver:
                [original] = receiver.receive_messages(max_wait_time=5)
                receiver.defer_message(original)
    finally:
        first.kill()
    second = start_subprocess(config_file=config, data_dir=data)
    try:
        with quick_client(second.connection_string) as client:
            with client.get_queue_sender("durable-dedup") as sender:
                sender.send_messages(ServiceBusMessage("duplicate", message_id="once"))
            with client.get_queue_receiver("durable-dedup") as receiver:
                [deferred] = receiver.receive_deferred_messages([original.sequence_number])
                assert str(deferred) == "original"
                receiver.complete_message(deferred)
                [arrived] = receiver.receive_messages(max_wait_time=6)
                # Activated after the restart, it is numbered then: after every number handed out before.
                assert str(arrived) == "scheduled"
                assert arrived.sequence_number > scheduled
                receiver.complete_message(arrived)
                assert receiver.receive_messages(max_wait_time=0.5) == []
    finally:
        second.stop()


def test_completed_messages_stay_gone_after_kill_and_restart(tmp_path):
    """A completion the emulator confirmed survives kill -9 straight after, before any idle tidy-up."""
    config, data = _config_and_data_dir(tmp_path)
    first = start_subprocess(config_file=config, data_dir=data)
    try:
        with quick_client(first.connection_string) as client:
            with client.get_queue_sender("durable") as sender:
                sender.send_messages([ServiceBusMessage(f"m{i}") for i in range(10)])
            with client.get_queue_receiver("durable", prefetch_count=10) as receiver:
                done: list[str] = []
                while len(done) < 10:
                    batch = receiver.receive_messages(max_message_count=10, max_wait_time=3)
                    assert batch, f"only {len(done)} of 10 messages arrived"
                    for message in batch:
                        if str(message) != "m3":
                            receiver.complete_message(message)
                        done.append(str(message))
    finally:
        # m3 is still locked and the nine completions were confirmed; settled rows may still be stored.
        first.kill()
    second = start_subprocess(config_file=config, data_dir=data)
    try:
        with (
            quick_client(second.connection_string) as client,
            client.get_queue_receiver("durable") as receiver,
        ):
            back = receiver.receive_messages(max_message_count=10, max_wait_time=3)
            assert [str(m) for m in back] == ["m3"]
            receiver.complete_message(back[0])
    finally:
        second.stop()
