"""Renders the topology into other formats: the official Service Bus emulator's Config.json, and more.

Config.json format: https://learn.microsoft.com/azure/service-bus-messaging/overview-emulator and the sample
in Azure/azure-service-bus-emulator-installer (``ServiceBus-Emulator/Config/Config.json``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from dualbus.shared.topology import NEVER_EXPIRES, Subscription, TopicSpec, Topology

__all__ = ["iso_duration", "render_emulator_config"]


def iso_duration(value: timedelta) -> str:
    """An ISO 8601 duration as Service Bus writes them (``PT1M``, ``P14D``, ``PT20S``)."""
    seconds = int(value.total_seconds())
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    time_part = "".join(f"{n}{unit}" for n, unit in ((hours, "H"), (minutes, "M"), (secs, "S")) if n)
    date_part = f"{days}D" if days else ""
    if not date_part and not time_part:
        return "PT0S"
    return f"P{date_part}" + (f"T{time_part}" if time_part else "")


def render_emulator_config(topology: Topology) -> dict[str, Any]:
    """The topology as the official Service Bus emulator's Config.json (also read by sandbox.servicebus)."""
    return {
        "UserConfig": {
            "Namespaces": [
                {
                    "Name": topology.namespace,
                    "Queues": [_control_queue(topology.control_queue)],
                    "Topics": [_topic(topic) for topic in topology.topics],
                }
            ],
            "Logging": {"Type": "File"},
        }
    }


def _control_queue(name: str) -> dict[str, Any]:
    # A command is the route's state until a later one replaces it, so it must never expire: an expired pause
    # would silently turn into "running" for replicas that start afterwards. The official emulator documents
    # PT1H as its longest TTL (Config-schema.json), so there no value keeps a command for good; dualbus's
    # emulator and Azure take this one as written.
    return {
        "Name": name,
        "Properties": {
            "DeadLetteringOnMessageExpiration": False,
            "DefaultMessageTimeToLive": iso_duration(NEVER_EXPIRES),
            "DuplicateDetectionHistoryTimeWindow": iso_duration(timedelta(minutes=10)),
            "ForwardDeadLetteredMessagesTo": "",
            "ForwardTo": "",
            "LockDuration": iso_duration(timedelta(minutes=1)),
            "MaxDeliveryCount": 10,
            "RequiresDuplicateDetection": False,
            "RequiresSession": False,
        },
    }


def _topic(topic: TopicSpec) -> dict[str, Any]:
    return {
        "Name": topic.name,
        "Properties": {
            "DefaultMessageTimeToLive": iso_duration(topic.default_message_time_to_live),
            "DuplicateDetectionHistoryTimeWindow": iso_duration(topic.duplicate_detection_window),
            "RequiresDuplicateDetection": True,
        },
        "Subscriptions": [_subscription(sub) for sub in topic.all_subscriptions],
    }


def _subscription(sub: Subscription) -> dict[str, Any]:
    return {
        "Name": sub.name,
        "Properties": {
            "DeadLetteringOnMessageExpiration": sub.dead_lettering_on_message_expiration,
            "DefaultMessageTimeToLive": iso_duration(sub.default_message_time_to_live),
            "LockDuration": iso_duration(sub.lock_duration),
            "MaxDeliveryCount": sub.max_delivery_count,
            "ForwardDeadLetteredMessagesTo": "",
            "ForwardTo": "",
            "RequiresSession": sub.requires_session,
        },
        "Rules": [
            {
                "Name": sub.rule_name,
                "Properties": {"FilterType": "Sql", "SqlFilter": {"SqlExpression": sub.rule_sql}},
            }
        ],
    }
