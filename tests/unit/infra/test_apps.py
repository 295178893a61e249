"""Every route of the topology gets exactly one consumer app with a scale rule on its own subscription."""

from __future__ import annotations

from datetime import timedelta

import pytest

from dualbus.shared.envelope import Origin
from dualbus.shared.errors import TopologyError
from dualbus.shared.render_infra import MESSAGES_PER_REPLICA, consumer_apps, producer_apps
from dualbus.shared.topology import Direction, SubscriptionSpec, TopicSpec, Topology, default_topology


def test_one_consumer_per_route() -> None:
    """The consumers correspond one-to-one with the topology's (topic, subscription) routes."""
    topology = default_topology()
    apps = consumer_apps(topology)
    assert [(app.topic, app.subscription) for app in apps] == topology.routes()
    assert len({app.name for app in apps}) == len(apps)


def test_scale_metadata_names_the_consumers_own_subscription() -> None:
    """Each consumer's KEDA metadata names its own topic and subscription, a count and the namespace."""
    for app in consumer_apps(default_topology()):
        metadata = app.scale_metadata(namespace="contoso-sb")
        assert metadata == {
            "topicName": app.topic.name,
            "subscriptionName": app.subscription.name,
            "messageCount": str(MESSAGES_PER_REPLICA),
            "namespace": "contoso-sb",
        }


def test_consumer_arguments_name_area_and_target() -> None:
    """A consumer runs as `consume AREA --to TARGET`, the target being the side its subscription feeds."""
    apps = {app.name: app for app in consumer_apps(default_topology())}
    assert apps["dualbus-customer-to-fo"].args == ("customer", "--to", "fo")
    assert apps["dualbus-organisation-to-dv"].args == ("organisation", "--to", "dataverse")
    assert apps["dualbus-organisation-to-dv"].target is Origin.DATAVERSE


def test_producers_one_per_source_system() -> None:
    """There is one producer per origin, started with `--from ORIGIN`."""
    producers = producer_apps()
    assert [p.origin for p in producers] == [Origin.FO, Origin.DATAVERSE]
    assert [p.args for p in producers] == [("--from", "fo"), ("--from", "dataverse")]


def test_session_consumers_scale_no_further_than_their_sessions() -> None:
    """A session subscription's consumer never gets more replicas than the topic has ordering buckets."""
    sub = SubscriptionSpec(direction=Direction.TO_FO)
    topology = Topology(topics=(TopicSpec(area="vendor", subscriptions=(sub,), ordering_buckets=3),))
    (app,) = consumer_apps(topology)
    assert app.max_replicas == 3


def test_app_names_fit_container_apps_limit() -> None:
    """Every app name is a valid Container Apps name: at most 32 lower-case letters, digits and hyphens."""
    names = [a.name for a in consumer_apps(default_topology())] + [p.name for p in producer_apps()]
    assert all(len(name) <= 32 and name == name.lower() and name[0].isalpha() for name in names)


def test_overlong_app_name_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A name that Container Apps would refuse is a TopologyError before anything is rendered."""
    monkeypatch.setattr("dualbus.shared.render_infra._apps.APP_PREFIX", "a-prefix-far-too-long-for-azure")
    with pytest.raises(TopologyError, match="must be 2-32"):
        consumer_apps(default_topology())


def test_shutdown_grace_outlasts_the_message_lock() -> None:
    """A stopping consumer is given longer than one lock duration to settle the message in hand."""
    sub = SubscriptionSpec(direction=Direction.TO_FO, lock_duration=timedelta(minutes=2))
    (app,) = consumer_apps(Topology(topics=(TopicSpec(area="vendor", subscriptions=(sub,)),)))
    assert app.shutdown_grace_seconds > 120
