"""The topology commands render the one definition."""

from __future__ import annotations

from pathlib import Path

import orjson
from typer.testing import CliRunner

from dualbus.cli import app
from dualbus.shared.render import render_emulator_config
from dualbus.shared.topology import default_topology

runner = CliRunner()


def test_render_emulator_config_to_file(tmp_path: Path) -> None:
    """`topology render --format emulator-config -o FILE` writes the rendered Config.json."""
    target = tmp_path / "Config.json"
    result = runner.invoke(app, ["topology", "render", "--format", "emulator-config", "-o", str(target)])
    assert result.exit_code == 0, result.output
    assert orjson.loads(target.read_bytes()) == render_emulator_config(default_topology())


def test_render_refuses_unknown_format() -> None:
    """An unknown format is refused with a usage error."""
    result = runner.invoke(app, ["topology", "render", "--format", "bicep-nope"])
    assert result.exit_code == 2


def test_show_lists_every_route() -> None:
    """`topology show` lists one line per topic subscription."""
    result = runner.invoke(app, ["topology", "show"])
    assert result.exit_code == 0
    assert "dualbus.customer/to-fo" in result.output
    assert len(result.output.strip().splitlines()) == len(default_topology().routes())
