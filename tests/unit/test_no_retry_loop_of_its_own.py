"""Every retry goes through the one retry policy (``shared.retry``): no other production module sleeps and
tries again on its own.

A wait in production code is a sleep (``asyncio.sleep``, ``time.sleep``, however imported) or an event's
wait cut off by a timeout (``asyncio.wait_for(event.wait(), seconds)``), found with ``ast``;
``asyncio.sleep(0)`` only hands the loop over and waits for nothing. ``POLLS`` lists every wait there is, by
module and function, with why it is not a retry: a poll interval, a schedule, a wait for a condition or for
a child process. A new wait fails the test: a retry goes through ``RetryPolicy`` (``call``, ``retrying``, or
a loop's ``Backoff``), anything else is added here with its reason. The sandbox twins and the benchmarks are
not production code.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.sources import ROOT, python_files

PRODUCTION = ("shared", "producers", "consumers", "d365", "dualbus")
SLEEPS = frozenset({"asyncio.sleep", "time.sleep"})

POLLS: dict[tuple[str, str], str] = {
    ("shared/control.py", "PauseWatcher.run"): (
        "reads the pause switch every interval whatever the last read did; meanwhile the last state holds"
    ),
    ("producers/runner.py", "_every"): (
        "the schedule after a round that went well; a failed round waits through the policy's Backoff"
    ),
    ("consumers/_batch.py", "BatchingApi._flush"): (
        "a $batch that is not full waits a paced window for more requests to fill it, or for the batch to "
        "fill; nothing failed and nothing is tried again"
    ),
    ("consumers/_circuit.py", "Circuit._changes"): (
        "waits for the circuit to close or for its probe turn, within the caller's budget; the apply itself "
        "is retried by the message's policy"
    ),
    ("dualbus/commands/status.py", "status"): "the interval between the two readings rates are taken over",
    ("dualbus/ops/alert_monitor.py", "AlertMonitor.run"): "the alert monitor's poll interval",
    ("dualbus/ops/applied.py", "wait_applied"): (
        "reads the subscriptions' counts until the consumers drained them, within a deadline: a condition"
    ),
    ("dualbus/demo/monitor.py", "Monitor.wait"): "the demo view's refresh tick",
    ("dualbus/demo/launch.py", "Launcher.twins_info"): "waits for the sandbox child to write its addresses",
    ("dualbus/demo/launch.py", "_wait_http"): "waits for a child process to come up and answer over HTTP",
    ("dualbus/demo/processes.py", "ChildProcess.wait_for"): "waits for a child's log to say it is ready",
    ("dualbus/demo/processes.py", "_stop"): "gives children their grace to exit after SIGTERM",
    ("dualbus/demo/guardian.py", "_stop"): "gives a dead demo's children their grace to exit after SIGTERM",
    ("dualbus/demo/run.py", "_Demo._serve"): "keeps the demo up until Ctrl-C; nothing is tried",
}


def _bound_names(tree: ast.AST) -> dict[str, str]:
    """What each imported name stands for (``from time import sleep as nap`` gives nap: time.sleep)."""
    bound = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                # ``import a.b`` binds a; ``import a.b as c`` binds c to a.b.
                top = alias.name.split(".")[0]
                bound[alias.asname or top] = alias.name if alias.asname else top
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            bound.update({a.asname or a.name: f"{node.module}.{a.name}" for a in node.names})
    return bound


def _dotted(node: ast.expr, bound: dict[str, str]) -> str | None:
    if isinstance(node, ast.Name):
        return bound.get(node.id, node.id)
    if isinstance(node, ast.Attribute):
        head = _dotted(node.value, bound)
        return f"{head}.{node.attr}" if head else None
    return None


def _is_wait(call: ast.Call, bound: dict[str, str]) -> bool:
    called = _dotted(call.func, bound)
    if called in SLEEPS:
        return not (call.args and isinstance(call.args[0], ast.Constant) and call.args[0].value == 0)
    if called == "asyncio.wait_for" and call.args and isinstance(call.args[0], ast.Call):
        waited = call.args[0].func
        return isinstance(waited, ast.Attribute) and waited.attr == "wait"
    return False


def _waits_in(tree: ast.AST, bound: dict[str, str], scope: tuple[str, ...] = ()) -> Iterator[str]:
    """The qualified name of the function around each wait in ``tree`` (module level: ``<module>``)."""
    for node in ast.iter_child_nodes(tree):
        inner = scope
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            inner = (*scope, node.name)
        if isinstance(node, ast.Call) and _is_wait(node, bound):
            yield ".".join(scope) or "<module>"
        yield from _waits_in(node, bound, inner)


def waits(root: Path = ROOT) -> set[tuple[str, str]]:
    """Every (module, function) of production code that sleeps or waits with a timeout."""
    found = set()
    for relative, path in python_files(PRODUCTION, root):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found.update((relative, function) for function in _waits_in(tree, _bound_names(tree)))
    return found


def test_every_wait_in_production_code_is_a_listed_poll() -> None:
    """No module sleeps on its own but the listed polls; a retry loop goes through shared.retry."""
    assert sorted(waits() - POLLS.keys()) == []


def test_every_listed_poll_still_waits() -> None:
    """A poll that stopped waiting (or moved) leaves the list, so that the list says what the code does."""
    assert sorted(POLLS.keys() - waits()) == []


@pytest.mark.parametrize(
    "source",
    [
        "import asyncio\nasync def f():\n    while True:\n        await asyncio.sleep(2)\n",
        "from asyncio import sleep\nasync def f():\n    await sleep(2)\n",
        "import time as t\ndef f():\n    t.sleep(1)\n",
        "from time import sleep as nap\nclass A:\n    def f(self):\n        nap(1)\n",
        "import asyncio\nasync def f(stop):\n    await asyncio.wait_for(stop.wait(), timeout=2)\n",
    ],
)
def test_a_retry_loop_of_its_own_is_caught(tmp_path: Path, source: str) -> None:
    """Each way of writing a sleep is found, with the function it sits in."""
    stray = tmp_path / "consumers" / "stray.py"
    stray.parent.mkdir()
    stray.write_text(source)
    assert len(waits(tmp_path)) == 1
    assert next(iter(waits(tmp_path)))[0] == "consumers/stray.py"


def test_a_yield_to_the_loop_is_not_a_wait(tmp_path: Path) -> None:
    """``asyncio.sleep(0)`` lets other tasks run and waits for nothing; a wait on a task is not a sleep."""
    module = tmp_path / "consumers" / "fine.py"
    module.parent.mkdir()
    module.write_text(
        "import asyncio\nasync def f(task):\n"
        "    await asyncio.sleep(0)\n    await asyncio.wait_for(task, 1)\n"
    )
    assert waits(tmp_path) == set()
