"""The Service Bus intake's refusals: a data event message that can never be used is dead-lettered with its
reason, and the intake goes on with the rest of the batch instead of failing (and crash-looping)."""

from __future__ import annotations

from typing import Any, cast

import pytest

from dualbus.producers.fo_queue import INVALID_EVENT, EventSource, FoQueueIntake

from .event_messages import currency_event_message

_GOOD_TIME = "/Date(1767323045000)/"


def _message(message_id: str, operation_created_on: str) -> Any:
    """A currency update's data event message, its OperationCreatedOn as given."""
    return currency_event_message(message_id, operation_created_on=operation_created_on)


class _Receiver:
    """Hands out one batch and notes how each message was settled."""

    def __init__(self, *messages: Any) -> None:
        self.batch = list(messages)
        self.settled: list[tuple[str, str, str | None]] = []
        self.descriptions: list[str] = []

    async def receive_messages(self, **_: Any) -> list[Any]:
        batch, self.batch = self.batch, []
        return batch

    async def complete_message(self, message: Any) -> None:
        self.settled.append(("complete", message.message_id, None))

    async def dead_letter_message(self, message: Any, **why: Any) -> None:
        self.settled.append(("dead-letter", message.message_id, why["reason"]))
        self.descriptions.append(why["error_description"])


class _Handler:
    def __init__(self) -> None:
        self.published: list[str] = []

    async def handle(self, events: list[Any]) -> int:
        self.published += [event.event_entity_name for event in events]
        return len(events)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "date",
    [
        "/Date(99999999999999999)/",
        pytest.param(f"/Date({'9' * 5000})/", id="/Date(<5000 digits>)/"),
        "0001-01-01T00:00:00+01:00",
    ],
)
async def test_an_event_with_an_impossible_date_is_dead_lettered_and_the_batch_goes_on(date: str) -> None:
    """A date no datetime holds is an invalid event like any other: dead-lettered as InvalidDataEvent,
    naming the date, while the rest of its batch is published and completed."""
    receiver = _Receiver(_message("bad", date), _message("good", _GOOD_TIME))
    handler = _Handler()
    intake = FoQueueIntake(cast(Any, None), EventSource(queue="events"), cast(Any, handler))
    completed = await intake.receive_once(cast(Any, receiver))
    assert completed == 1
    assert receiver.settled == [("dead-letter", "bad", INVALID_EVENT), ("complete", "good", None)]
    assert "OperationCreatedOn is not a date-time" in receiver.descriptions[0]
    assert len(handler.published) == 1
