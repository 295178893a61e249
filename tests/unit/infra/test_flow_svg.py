"""The flow picture is well-formed SVG that shows every topic, subscription and app of the topology."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from dualbus.shared.render_infra import consumer_apps, producer_apps, render_flow_svg
from dualbus.shared.topology import Direction, SubscriptionSpec, TopicSpec, Topology, default_topology

SVG = "{http://www.w3.org/2000/svg}"


def _labels(svg: str) -> list[str]:
    root = ET.fromstring(svg)  # noqa: S314 - our own rendered text, not untrusted input
    return [text.text or "" for text in root.iter(f"{SVG}text")]


def test_every_topic_and_app_is_drawn() -> None:
    """Each topic, producer and consumer has a labelled box."""
    topology = default_topology()
    labels = _labels(render_flow_svg(topology))
    for name in [t.name for t in topology.topics] + [a.name for a in consumer_apps(topology)]:
        assert labels.count(name) == 1, name
    assert all(p.name in labels for p in producer_apps())
    assert labels.count("to-fo") == sum(1 for _, s in topology.routes() if s.direction is Direction.TO_FO)


def test_picture_grows_with_the_topology() -> None:
    """A smaller topology draws fewer rows and a shorter picture."""
    small = Topology(
        topics=(TopicSpec(area="vendor", subscriptions=(SubscriptionSpec(direction=Direction.TO_FO),)),)
    )
    full_height = ET.fromstring(render_flow_svg(default_topology())).get("height")  # noqa: S314 - our own text
    small_height = ET.fromstring(render_flow_svg(small)).get("height")  # noqa: S314 - our own text
    assert int(small_height or 0) < int(full_height or 0)
    assert "dualbus.customer" not in _labels(render_flow_svg(small))


def test_control_queue_is_drawn() -> None:
    """The control queue that carries pause and resume has its own box under the topics."""
    topology = default_topology()
    labels = _labels(render_flow_svg(topology))
    assert sum(label.startswith(f"{topology.control_queue} queue") for label in labels) == 1
