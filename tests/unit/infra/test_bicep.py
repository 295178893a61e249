"""The Bicep parameters carry the topology exactly; main.bicep uses them with the right roles and rules."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest

from dualbus.shared.render import iso_duration
from dualbus.shared.render_infra import consumer_apps, render_bicep_parameters
from dualbus.shared.topology import default_topology

ROOT = Path(__file__).resolve().parents[3]
BICEP = (ROOT / "infra" / "main.bicep").read_text(encoding="utf-8")
# https://learn.microsoft.com/azure/role-based-access-control/built-in-roles/integration
SENDER = "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39"
RECEIVER = "4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0"
OWNER = "090c5cfd-751d-490a-894a-3ce6f1109419"


def _params() -> dict[str, object]:
    return {k: v["value"] for k, v in render_bicep_parameters(default_topology())["parameters"].items()}


def _resource(symbol: str) -> str:
    """The text of one top-level resource declaration of main.bicep."""
    match = re.search(rf"^resource {symbol} .*?(?=^(?:resource|output|//) )", BICEP, re.MULTILINE | re.DOTALL)
    assert match is not None, f"main.bicep declares no resource {symbol}"
    return match.group(0)


def test_topics_and_subscriptions_match_the_topology() -> None:
    """Every topic and subscription (each catch-all too), with settings and SQL rule, is in the parameters."""
    topology = default_topology()
    params = _params()
    assert [t["name"] for t in params["topics"]] == [t.name for t in topology.topics]
    for rendered, (topic, sub) in zip(params["subscriptions"], topology.subscriptions(), strict=True):
        assert params["topics"][rendered["topicIndex"]]["name"] == topic.name == rendered["topic"]
        assert rendered["name"] == sub.name
        assert rendered["properties"]["lockDuration"] == iso_duration(sub.lock_duration)
        assert rendered["properties"]["maxDeliveryCount"] == sub.max_delivery_count
        assert rendered["properties"]["requiresSession"] is sub.requires_session
        assert rendered["rule"]["name"] == sub.rule_name
        assert rendered["rule"]["properties"]["sqlFilter"]["sqlExpression"] == sub.rule_sql


def test_topic_properties_carry_duplicate_detection() -> None:
    """Each topic detects duplicates over the topology's window, which makes message ids idempotent."""
    for rendered, topic in zip(_params()["topics"], default_topology().topics, strict=True):
        assert rendered["properties"]["requiresDuplicateDetection"] is True
        assert rendered["properties"]["duplicateDetectionHistoryTimeWindow"] == iso_duration(
            topic.duplicate_detection_window
        )


def test_consumers_point_at_their_own_subscription() -> None:
    """Each rendered consumer's indexes and scale metadata name its route and its topic's unroutable one."""
    params = _params()
    apps = consumer_apps(default_topology())
    assert len(params["consumers"]) == len(apps)
    for rendered, app in zip(params["consumers"], apps, strict=True):
        sub = params["subscriptions"][rendered["subscriptionIndex"]]
        assert (sub["topic"], sub["name"]) == (app.topic.name, app.subscription.name)
        assert rendered["scaleMetadata"]["topicName"] == sub["topic"]
        assert rendered["scaleMetadata"]["subscriptionName"] == sub["name"]
        unroutable = params["subscriptions"][rendered["unroutableSubscriptionIndex"]]
        assert (unroutable["topic"], unroutable["name"]) == (app.topic.name, "unroutable")
        assert rendered["unroutableScaleMetadata"]["subscriptionName"] == "unroutable"


def test_control_queue_is_the_topologys() -> None:
    """The control queue consumers peek is created under the topology's name."""
    assert _params()["controlQueue"]["name"] == default_topology().control_queue


def test_every_rendered_parameter_is_declared_in_main_bicep() -> None:
    """main.bicep declares each parameter the rendered file sets, with a matching type."""
    declared = dict(re.findall(r"^param (\w+) (\w+)", BICEP, re.MULTILINE))
    for name, value in _params().items():
        assert declared.get(name) == ("array" if isinstance(value, list) else "object"), name


def test_checked_in_parameters_file_is_valid_json_with_the_schema() -> None:
    """The checked-in parameters file is a deployment parameters document."""
    document = orjson.loads((ROOT / "infra" / "topology.parameters.json").read_bytes())
    assert document["$schema"].endswith("deploymentParameters.json#")


@pytest.mark.parametrize(
    ("symbol", "role", "principal", "scope"),
    [
        ("producersSend", "serviceBusDataSender", "producerIdentities[i]", "namespace"),
        ("consumersReceive", "serviceBusDataReceiver", "consumerIdentities[i]", "subscriptionResources[c."),
        (
            "consumersReceiveUnroutable",
            "serviceBusDataReceiver",
            "consumerIdentities[i]",
            "subscriptionResources[c.unroutableSubscriptionIndex]",
        ),
        ("consumersPeekControl", "serviceBusDataReceiver", "consumerIdentities[i]", "controlQueueResource"),
        ("scalerReads", "serviceBusDataOwner", "scalerIdentity", "topicResources[i]"),
    ],
)
def test_role_assignments(symbol: str, role: str, principal: str, scope: str) -> None:
    """Producers send, consumers receive from their own subscription, the scaler reads counts."""
    block = _resource(symbol)
    assert "'Microsoft.Authorization/roleAssignments@" in block
    assert f"roleDefinitions', roles.{role})" in block
    assert f"principalId: {principal}.properties.principalId" in block
    assert f"scope: {scope}" in block


def test_role_definition_ids_are_the_built_in_ones() -> None:
    """The role variables hold Azure's built-in Service Bus role ids."""
    assert f"serviceBusDataSender: '{SENDER}'" in BICEP
    assert f"serviceBusDataReceiver: '{RECEIVER}'" in BICEP
    assert f"serviceBusDataOwner: '{OWNER}'" in BICEP


def test_consumer_apps_scale_on_their_subscription_with_the_scaler_identity() -> None:
    """Each consumer app has a KEDA azure-servicebus rule from its rendered metadata, on managed identity."""
    block = _resource("consumerApps")
    assert "for (c, i) in consumers" in block
    assert "type: 'azure-servicebus'" in block
    assert "metadata: union(c.scaleMetadata, { namespace: namespace.name })" in block
    assert "metadata: union(c.unroutableScaleMetadata, { namespace: namespace.name })" in block
    assert "identity: scalerIdentity.id" in block
    assert "{ identity: scalerIdentity.id, lifecycle: 'None' }" in block
    assert "terminationGracePeriodSeconds: c.terminationGracePeriodSeconds" in block
    assert "auth:" not in block


def test_subscriptions_and_rules_are_driven_by_parameters() -> None:
    """Topics, subscriptions, rules and apps loop over the rendered parameters, not hand-written lists."""
    assert "for topic in topics:" in _resource("topicResources")
    assert "parent: topicResources[sub.topicIndex]" in _resource("subscriptionResources")
    assert "properties: sub.rule.properties" in _resource("ruleResources")
    assert "for (p, i) in producers" in _resource("producerApps")


def test_control_queue_commands_never_expire() -> None:
    """Azure gets the control queue with its longest TTL: a pause holds until a resume, however long."""
    properties = _params()["controlQueue"]["properties"]
    assert properties["defaultMessageTimeToLive"] == "P10675199DT2H48M5S"
