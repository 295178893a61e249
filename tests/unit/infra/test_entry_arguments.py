"""The arguments rendered for each app are accepted by the real commands and mean what they say."""

from __future__ import annotations

import typer.main

from dualbus.cli import app
from dualbus.shared.render_infra import consumer_apps, producer_apps
from dualbus.shared.topology import default_topology

COMMANDS = typer.main.get_command(app).commands  # type: ignore[attr-defined]


def test_consume_command_parses_every_consumers_arguments() -> None:
    """`dualbus consume` accepts each consumer's rendered arguments as its area and target."""
    for consumer in consumer_apps(default_topology()):
        with COMMANDS["consume"].make_context("consume", list(consumer.args)) as ctx:
            assert ctx.params["area"] == consumer.area
            assert ctx.params["to"] == consumer.target.value


def test_produce_command_parses_every_producers_arguments() -> None:
    """`dualbus produce` accepts each producer's rendered arguments as the system it reads."""
    for producer in producer_apps():
        with COMMANDS["produce"].make_context("produce", list(producer.args)) as ctx:
            assert ctx.params["source"] == producer.origin.value
