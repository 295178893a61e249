"""The topology as the parameters file ``infra/main.bicep`` loops over.

The lists are flat (topics, subscriptions, consumers, producers) because a Bicep loop cannot nest inside
another one; a subscription names its topic by index so that Bicep can set ``parent`` to that topic.
Property names are those of the ARM resources ``Microsoft.ServiceBus/namespaces/topics`` and
``.../subscriptions`` and ``.../rules`` (API 2021-11-01):
https://learn.microsoft.com/azure/templates/microsoft.servicebus/2021-11-01/namespaces/topics/subscriptions/rules
Parameters file format:
https://learn.microsoft.com/azure/azure-resource-manager/templates/parameter-files
"""

from __future__ import annotations

from typing import Any

from dualbus.shared.render import iso_duration, render_emulator_config
from dualbus.shared.render_infra._apps import ConsumerApp, ProducerApp, consumer_apps, producer_apps
from dualbus.shared.topology import Subscription, TopicSpec, Topology

__all__ = ["PARAMETERS_SCHEMA", "render_bicep_parameters"]

PARAMETERS_SCHEMA = "https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#"


def render_bicep_parameters(topology: Topology) -> dict[str, Any]:
    """The deployment parameters file for ``infra/main.bicep``: every part that depends on the topology."""
    subscriptions = topology.subscriptions()
    consumers = consumer_apps(topology)
    return {
        "$schema": PARAMETERS_SCHEMA,
        "contentVersion": "1.0.0.0",
        "parameters": {
            "topics": {"value": [_topic(topic) for topic in topology.topics]},
            "subscriptions": {"value": [_subscription(topology, t, s) for t, s in subscriptions]},
            "controlQueue": {"value": _control_queue(topology)},
            "consumers": {"value": [_consumer(app, subscriptions) for app in consumers]},
            "producers": {"value": [_producer(app) for app in producer_apps()]},
        },
    }


def _topic(topic: TopicSpec) -> dict[str, Any]:
    return {
        "name": topic.name,
        "area": topic.area,
        "properties": {
            "defaultMessageTimeToLive": iso_duration(topic.default_message_time_to_live),
            "duplicateDetectionHistoryTimeWindow": iso_duration(topic.duplicate_detection_window),
            "requiresDuplicateDetection": True,
        },
    }


def _subscription(topology: Topology, topic: TopicSpec, sub: Subscription) -> dict[str, Any]:
    return {
        "topicIndex": topology.areas.index(topic.area),
        "topic": topic.name,
        "name": sub.name,
        "properties": {
            "deadLetteringOnMessageExpiration": sub.dead_lettering_on_message_expiration,
            "defaultMessageTimeToLive": iso_duration(sub.default_message_time_to_live),
            "lockDuration": iso_duration(sub.lock_duration),
            "maxDeliveryCount": sub.max_delivery_count,
            "requiresSession": sub.requires_session,
        },
        "rule": {
            "name": sub.rule_name,
            "properties": {"filterType": "SqlFilter", "sqlFilter": {"sqlExpression": sub.rule_sql}},
        },
    }


def _control_queue(topology: Topology) -> dict[str, Any]:
    # The queue's settings are defined once, in the emulator's Config.json rendering; ARM spells the same
    # properties in camelCase and has no use for the emulator's empty forwarding addresses.
    (queue,) = render_emulator_config(topology)["UserConfig"]["Namespaces"][0]["Queues"]
    properties = {
        key[0].lower() + key[1:]: value for key, value in queue["Properties"].items() if value != ""
    }
    return {"name": queue["Name"], "properties": properties}


def _camel(pascal: str) -> str:
    return pascal[:1].lower() + pascal[1:]


def _consumer(app: ConsumerApp, subscriptions: list[tuple[TopicSpec, Subscription]]) -> dict[str, Any]:
    # The namespace's name is chosen at deployment time; main.bicep adds it to the metadata.
    metadata = {k: v for k, v in app.scale_metadata(namespace="").items() if k != "namespace"}
    unroutable = {k: v for k, v in app.unroutable_scale_metadata(namespace="").items() if k != "namespace"}
    return {
        "name": app.name,
        "area": app.area,
        "target": app.target.value,
        "subscriptionIndex": subscriptions.index((app.topic, app.subscription)),
        # A consumer also dead-letters what its topic's unroutable subscription receives.
        "unroutableSubscriptionIndex": subscriptions.index((app.topic, app.topic.unroutable)),
        "args": list(app.args),
        "maxReplicas": app.max_replicas,
        "terminationGracePeriodSeconds": app.shutdown_grace_seconds,
        "scaleMetadata": metadata,
        "unroutableScaleMetadata": unroutable,
    }


def _producer(app: ProducerApp) -> dict[str, Any]:
    return {"name": app.name, "origin": app.origin.value, "args": list(app.args)}
