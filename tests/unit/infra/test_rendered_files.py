"""The checked-in rendered files are what `dualbus infra render` writes from today's topology."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from dualbus.cli import app
from dualbus.commands.infra import stale_files, write_files
from dualbus.sandbox.servicebus.config import load_config
from dualbus.shared.render_infra import docs_files, infra_files
from dualbus.shared.topology import default_topology

ROOT = Path(__file__).resolve().parents[3]
runner = CliRunner()

INFRA = infra_files(default_topology())
DOCS = docs_files(default_topology())


@pytest.mark.parametrize(
    ("root", "relative"), [("infra", name) for name in INFRA] + [("docs", n) for n in DOCS]
)
def test_checked_in_file_is_up_to_date(tmp_path: Path, root: str, relative: str) -> None:
    """Re-rendering into a fresh directory gives the checked-in file byte for byte; else run the command."""
    files = INFRA if root == "infra" else DOCS
    (fresh,) = write_files(tmp_path, {relative: files[relative]})
    checked_in = ROOT / root / relative
    assert checked_in.is_file(), f"{checked_in} is missing: run `dualbus infra render`"
    assert checked_in.read_bytes() == fresh.read_bytes(), f"{checked_in} is stale: run `dualbus infra render`"


def test_render_command_writes_every_file(tmp_path: Path) -> None:
    """`dualbus infra render` writes each rendered file under the directories it is given."""
    infra, docs = tmp_path / "infra", tmp_path / "docs"
    result = runner.invoke(app, ["infra", "render", "--output-dir", str(infra), "--docs-dir", str(docs)])
    assert result.exit_code == 0, result.output
    assert stale_files(infra, INFRA) == []
    assert stale_files(docs, DOCS) == []
    assert result.output.count("wrote ") == len(INFRA) + len(DOCS)


def test_check_reports_a_stale_file(tmp_path: Path) -> None:
    """`--check` exits 1 and names the file when a rendered file differs, and writes nothing."""
    infra, docs = tmp_path / "infra", tmp_path / "docs"
    write_files(infra, INFRA)
    write_files(docs, DOCS)
    args = ["infra", "render", "--output-dir", str(infra), "--docs-dir", str(docs), "--check"]
    assert runner.invoke(app, args).exit_code == 0
    stale = infra / "k8s" / "consumers.yaml"
    stale.write_text("# edited by hand\n", encoding="utf-8")
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert "consumers.yaml" in result.output
    assert stale.read_text(encoding="utf-8") == "# edited by hand\n"


def test_emulator_config_loads_in_the_sandbox_emulator() -> None:
    """The checked-in Config.json is accepted by dualbus's own emulator, with every topic and subscription."""
    (namespace,) = load_config(ROOT / "infra" / "emulator" / "Config.json").namespaces
    topology = default_topology()
    assert [topic.name for topic in namespace.topics] == [topic.name for topic in topology.topics]
    assert [queue.name for queue in namespace.queues] == [topology.control_queue]
    subscriptions = [(t.name, s.name) for t in namespace.topics for s in t.subscriptions]
    assert subscriptions == [(topic.name, sub.name) for topic, sub in topology.subscriptions()]
