"""A batch splits into one in-order queue per record, so records run side by side and each stays in order."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from dualbus.consumers._groups import record_groups


@dataclass
class Msg:
    """A received message's body, as the SDK gives it (an iterable of data sections)."""

    body: object
    label: str


def _msg(entity: str, key: dict, label: str) -> Msg:
    return Msg(body=iter([orjson.dumps({"entity": entity, "key": key})]), label=label)


def _labels(batch: list[Msg]) -> list[list[str]]:
    return [[m.label for m in group] for group in record_groups(batch).values()]


def test_changes_of_one_record_stay_together_in_order():
    """Messages of the same entity and key form one group in arrival order; others get their own."""
    batch = [
        _msg("Currencies", {"CurrencyCode": "EUR"}, "eur-1"),
        _msg("Currencies", {"CurrencyCode": "USD"}, "usd-1"),
        _msg("Currencies", {"CurrencyCode": "EUR"}, "eur-2"),
        _msg("Companies", {"CurrencyCode": "EUR"}, "other-entity"),
    ]
    assert _labels(batch) == [["eur-1", "eur-2"], ["usd-1"], ["other-entity"]]


def test_unreadable_bodies_each_stand_alone():
    """A body that is not an envelope never joins another message's group."""
    batch = [Msg(body=b"junk", label="a"), Msg(body=b"junk", label="b"), Msg(body=b'{"key": 1}', label="c")]
    assert _labels(batch) == [["a"], ["b"], ["c"]]


def test_a_body_that_cannot_be_named_stands_alone_instead_of_failing_the_batch():
    """A key nested deeper than orjson writes, and an AMQP value body of integers, are bodies like any
    unreadable one: they raised out of the grouping (TypeError; [2**62] as bytes, MemoryError), and the
    session's good messages went round with them until MaxDeliveryCount dead-lettered them all."""
    deep = b'{"entity": "Currencies", "key": ' + b'{"k": ' * 300 + b'"x"' + b"}" * 301  # orjson reads it
    batch = [
        Msg(body=iter([deep]), label="deep"),
        Msg(body=[2**62], label="value"),
        _msg("Currencies", {"CurrencyCode": "EUR"}, "good"),
    ]
    assert _labels(batch) == [["deep"], ["value"], ["good"]]
