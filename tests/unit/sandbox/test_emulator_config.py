"""Reading the official Service Bus emulator's Config.json."""

from __future__ import annotations

import copy
import json
import pathlib
from datetime import timedelta
from typing import Any

import pytest

from dualbus.sandbox.errors import SandboxConfigError
from dualbus.sandbox.servicebus.config import (
    CorrelationFilterConfig,
    SqlFilterConfig,
    default_config,
    load_config,
    parse_duration,
)

# Microsoft's sample from "Test locally by using the Azure Service Bus emulator" (learn.microsoft.com),
# kept byte for byte so that the test proves such a file loads unchanged.
SAMPLE = pathlib.Path(__file__).parent / "data" / "microsoft_sample_config.json"


def sample() -> dict[str, Any]:
    return json.loads(SAMPLE.read_text(encoding="utf-8"))


def test_microsoft_sample_loads_unchanged_from_a_path():
    """Microsoft's documented sample file loads as is, with every entity and property read."""
    config = load_config(SAMPLE)
    (namespace,) = config.namespaces
    assert namespace.name == "sbemulatorns"
    (queue,) = namespace.queues
    assert queue.name == "queue.1"
    assert queue.lock_duration == timedelta(minutes=1)
    assert queue.max_delivery_count == 3
    assert queue.forward_to is None
    (topic,) = namespace.topics
    assert [s.name for s in topic.subscriptions] == [
        "subscription.1",
        "subscription.2",
        "subscription.3",
        "subscription.4",
    ]
    correlation = topic.subscriptions[0].rules[0].filter
    assert isinstance(correlation, CorrelationFilterConfig)
    assert correlation.label == "subject1"
    assert correlation.reply_to_session_id == "sessionId"
    assert topic.subscriptions[1].rules[0].filter == CorrelationFilterConfig(properties={"prop1": "value1"})
    assert topic.subscriptions[2].rules == []
    sql_rule = topic.subscriptions[3].rules[0]
    assert sql_rule.filter == SqlFilterConfig(expression="sys.MessageId = '123456' AND userProp1 = 'value1'")
    assert sql_rule.action == "SET sys.To = 'Entity'"


def test_a_string_path_and_a_parsed_mapping_give_the_same_configuration():
    """A str is read as a file path and a Mapping as already-parsed JSON, with the same result."""
    assert load_config(str(SAMPLE)) == load_config(sample()) == load_config(SAMPLE)


def test_default_config_is_the_official_namespace_without_entities():
    """Without a file there is one namespace, sbemulatorns, and no queues or topics."""
    (namespace,) = default_config().namespaces
    assert (namespace.name, namespace.queues, namespace.topics) == ("sbemulatorns", [], [])


def test_missing_properties_take_the_official_schema_defaults():
    """A queue with only a name gets the schema defaults: PT1M lock, 3 deliveries, PT1H TTL, PT20S window."""
    config = load_config(
        {"UserConfig": {"Namespaces": [{"Name": "sbemulatorns", "Queues": [{"Name": "q"}]}]}}
    )
    queue = config.namespaces[0].queues[0]
    assert queue.lock_duration == timedelta(minutes=1)
    assert queue.max_delivery_count == 3
    assert queue.default_message_time_to_live == timedelta(hours=1)
    assert queue.duplicate_detection_history_time_window == timedelta(seconds=20)
    assert not queue.requires_session


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PT1M", timedelta(minutes=1)),
        ("PT20S", timedelta(seconds=20)),
        ("P14D", timedelta(days=14)),
        ("P1DT2H3M4.5S", timedelta(days=1, hours=2, minutes=3, seconds=4.5)),
        ("P2W", timedelta(days=14)),
        ("P1Y2M", timedelta(days=365 + 60)),
        ("P10675199DT2H48M5.4775807S", timedelta(days=10675199, hours=2, minutes=48, seconds=5.4775807)),
    ],
)
def test_iso_8601_durations_are_parsed(text, expected):
    """ISO 8601 durations with any mix of designators parse to the right timedelta."""
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "P", "PT", "1M", "PT1X", "P1H", "PT1M1H", "-PT1M", "00:01:00"])
def test_malformed_durations_are_refused(text):
    """Strings that are not ISO 8601 durations raise ValueError."""
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_duration(text)


def _mutated(path: list[str | int], value: Any) -> dict[str, Any]:
    document = copy.deepcopy(sample())
    node: Any = document
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return document


_SUB0 = ["UserConfig", "Namespaces", 0, "Topics", 0, "Subscriptions", 0]
_RULE_PROPS = [*_SUB0, "Rules", 0, "Properties"]


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            [*_SUB0, "Properties", "LockDuration"],
            "PT10M",
            r"UserConfig\.Namespaces\[0\]\.Topics\[0\]\.Subscriptions\[0\]\.Properties\.LockDuration: PT10M",
        ),
        (
            ["UserConfig", "Namespaces", 0, "Queues", 0, "Properties", "LockDuration"],
            "1 minute",
            r"Queues\[0\]\.Properties\.LockDuration: '1 minute' is not an ISO 8601",
        ),
        (
            ["UserConfig", "Namespaces", 0, "Queues", 0, "Properties", "MaxDeliveryCount"],
            0,
            r"Queues\[0\]\.Properties\.MaxDeliveryCount: must be at least 1",
        ),
        (
            ["UserConfig", "Namespaces", 0, "Queues", 0, "Properties", "MaxDeliveryCount"],
            "3",
            r"MaxDeliveryCount: expected an integer",
        ),
        (
            ["UserConfig", "Namespaces", 0, "Queues", 0, "Properties", "RequiresSession"],
            1,
            r"Queues\[0\]\.Properties\.RequiresSession: expected true or false",
        ),
        (
            ["UserConfig", "Namespaces", 0, "Queues", 0, "Properties", "RequiresSesion"],
            True,
            r"Queues\[0\]\.Properties\.RequiresSesion: unknown key",
        ),
        (
            ["UserConfig", "Namespaces", 0, "Queues", 0, "Properties", "DuplicateDetectionHistoryTimeWindow"],
            "P8D",
            r"DuplicateDetectionHistoryTimeWindow: P8D is outside Azure's range",
        ),
        (["UserConfig", "Namespaces", 0, "Queues", 0, "Name"], "-bad", r"Queues\[0\]\.Name: '-bad'"),
        (
            ["UserConfig", "Namespaces", 0, "Queues", 0, "Name"],
            "q" * 261,
            r"Queues\[0\]\.Name: .*at most 260",
        ),
        ([*_SUB0, "Name"], "a/b", r"Subscriptions\[0\]\.Name: 'a/b' is not a valid name"),
        (["UserConfig", "Namespaces", 0, "Name"], "ns", r"Namespaces\[0\]\.Name: 'ns'"),
        (["UserConfig", "Namespaces"], [], r"UserConfig\.Namespaces: at least one namespace"),
        (["UserConfig", "Namespaces", 0, "Topics"], {}, r"Namespaces\[0\]\.Topics: expected a JSON array"),
        (
            [*_RULE_PROPS, "FilterType"],
            "Boolean",
            r"Rules\[0\]\.Properties\.FilterType: expected 'Correlation'",
        ),
        ([*_RULE_PROPS, "CorrelationFilter"], {}, r"CorrelationFilter: a correlation filter needs"),
        ([*_RULE_PROPS, "CorrelationFilter", "Label"], 5, r"CorrelationFilter\.Label: expected a string"),
        (
            [*_SUB0, "Properties", "ForwardTo"],
            "nowhere",
            r"Subscriptions\[0\]\.Properties\.ForwardTo: no queue or topic named 'nowhere'",
        ),
        (["UserConfig", "Logging"], "File", r"UserConfig\.Logging: expected a JSON object"),
    ],
)
def test_each_bad_value_is_refused_with_its_json_path(path, value, message):
    """A bad value anywhere raises SandboxConfigError whose message starts with the value's JSON path."""
    with pytest.raises(SandboxConfigError, match=message):
        load_config(_mutated(path, value))


def test_a_queue_that_forwards_to_itself_is_refused():
    """Azure refuses auto-forwarding an entity to itself, and so does the loader."""
    document = _mutated(["UserConfig", "Namespaces", 0, "Queues", 0, "Properties", "ForwardTo"], "QUEUE.1")
    with pytest.raises(SandboxConfigError, match=r"Queues\[0\]\.Properties\.ForwardTo: .*itself"):
        load_config(document)


def test_forwarding_to_an_existing_queue_is_kept():
    """ForwardTo naming a queue of the namespace is read into the subscription's forward_to."""
    document = _mutated([*_SUB0, "Properties", "ForwardTo"], "queue.1")
    assert load_config(document).namespaces[0].topics[0].subscriptions[0].forward_to == "queue.1"


def test_names_are_unique_case_insensitively():
    """A topic named like a queue (case aside) is refused, naming the namespace."""
    document = _mutated(["UserConfig", "Namespaces", 0, "Topics", 0, "Name"], "Queue.1")
    with pytest.raises(
        SandboxConfigError, match=r"Namespaces\[0\]: queue or topic name 'Queue.1' is used twice"
    ):
        load_config(document)


def test_a_missing_file_and_bad_json_are_refused(tmp_path):
    """An unreadable or non-JSON file raises SandboxConfigError naming the file."""
    with pytest.raises(SandboxConfigError, match="cannot read"):
        load_config(tmp_path / "absent.json")
    broken = tmp_path / "Config.json"
    broken.write_text("{", encoding="utf-8")
    with pytest.raises(SandboxConfigError, match="not valid JSON"):
        load_config(broken)


def test_a_document_without_user_config_is_refused():
    """The root must hold UserConfig; anything else at the root is named."""
    with pytest.raises(SandboxConfigError, match=r"^UserConfig: required"):
        load_config({})
    with pytest.raises(SandboxConfigError, match=r"^Extra: unknown key"):
        load_config({**sample(), "Extra": 1})


def test_a_sql_filter_outside_the_subset_is_refused_naming_path_and_rule():
    """load_config refuses an unsupported SQL filter, naming its JSON path, the rule and the construct."""
    document = _mutated([*_RULE_PROPS], {"FilterType": "Sql", "SqlFilter": {"SqlExpression": "a + 1 = 2"}})
    with pytest.raises(
        SandboxConfigError,
        match=r"Rules\[0\]\.Properties\.SqlFilter\.SqlExpression: rule 'app-prop-filter-1': "
        r"unsupported arithmetic operator '\+' at position 3",
    ):
        load_config(document)


def test_an_unsupported_action_is_refused_naming_path_and_rule():
    """load_config refuses an action outside SET/REMOVE, naming its JSON path and the rule."""
    rule_props = ["UserConfig", "Namespaces", 0, "Topics", 0, "Subscriptions", 3, "Rules", 0, "Properties"]
    document = _mutated([*rule_props, "Action"], {"SqlExpression": "SET sys.SequenceNumber = 1"})
    with pytest.raises(
        SandboxConfigError,
        match=r"Subscriptions\[3\]\.Rules\[0\]\.Properties\.Action\.SqlExpression: rule 'sql-filter-1': "
        r"unsupported SET of the system property sys.SequenceNumber",
    ):
        load_config(document)


def test_a_sql_filter_without_its_expression_is_refused():
    """A Sql rule needs SqlFilter.SqlExpression; its absence is named by path."""
    document = _mutated([*_RULE_PROPS], {"FilterType": "Sql", "SqlFilter": {}})
    with pytest.raises(SandboxConfigError, match=r"Properties\.SqlFilter\.SqlExpression: required"):
        load_config(document)


def test_the_reserved_default_rule_name_and_a_schema_key_are_accepted():
    """A rule named $Default and a root "$schema" key, both seen in real files, load."""
    document = _mutated([*_SUB0, "Rules", 0, "Name"], "$Default")
    document["$schema"] = "https://example.invalid/schema.json"
    assert load_config(document).namespaces[0].topics[0].subscriptions[0].rules[0].name == "$Default"
