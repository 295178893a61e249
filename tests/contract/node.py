"""The official JavaScript SDK for the contract tests: installed from npm once, run as Node scenarios.

``@azure/service-bus`` 7.9 is installed with npm into a cache folder outside the repository
(``DUALBUS_NODE_CACHE``, else ``~/.cache/dualbus/node``), shared by test workers under a file lock and
reused by later runs. Without Node or without the npm registry the tests fail with a message that says so.
"""

from __future__ import annotations

import fcntl
import json
import os
import pathlib
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any

import pytest

__all__ = ["JS_SDK_SPEC", "NodeSdk", "install_js_sdk"]

JS_SDK_SPEC = "@azure/service-bus@7.9"
_SCENARIOS = pathlib.Path(__file__).resolve().parent / "js" / "scenarios.cjs"
# Inside the first test's 120 s (pytest-timeout counts fixture set-up); npm takes seconds when it can connect.
_INSTALL_TIMEOUT_S = 100
_SCENARIO_TIMEOUT_S = 60


@dataclass(frozen=True)
class NodeSdk:
    """Runs scenarios of ``js/scenarios.cjs`` with the installed SDK."""

    node: str
    modules: pathlib.Path

    def run(self, connection_string: str, scenario: str, **arguments: Any) -> dict[str, Any]:
        """Run one scenario against ``connection_string``; return what it printed (errors included)."""
        env = {
            **os.environ,
            "NODE_PATH": str(self.modules),
            "SERVICEBUS_CONNECTION_STR": connection_string,
        }
        done = subprocess.run(  # noqa: S603 - our own script, run by the Node found on PATH
            [self.node, str(_SCENARIOS), scenario, json.dumps(arguments)],
            env=env,
            capture_output=True,
            text=True,
            timeout=_SCENARIO_TIMEOUT_S,
            check=False,
        )
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if not lines:
            raise AssertionError(f"scenario {scenario} printed no result:\n{done.stdout}\n{done.stderr}")
        result: dict[str, Any] = json.loads(lines[-1])
        return result


def _cache_dir() -> pathlib.Path:
    configured = os.environ.get("DUALBUS_NODE_CACHE")
    if configured:
        return pathlib.Path(configured)
    return pathlib.Path.home() / ".cache" / "dualbus" / "node"


def install_js_sdk() -> NodeSdk:
    """The SDK installed (once per cache folder), or a test failure saying what is missing."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail("the JavaScript contract tests need Node.js 18+ and npm on PATH", pytrace=False)
    folder = _cache_dir() / "service-bus-7.9"
    folder.mkdir(parents=True, exist_ok=True)
    modules = folder / "node_modules"
    marker = modules / "@azure" / "service-bus" / "package.json"
    with (folder / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # xdist workers install once, the others wait for it
        if not marker.exists():
            _npm_install(npm, folder, marker)
    return NodeSdk(node=node, modules=modules)


def _npm_install(npm: str, folder: pathlib.Path, marker: pathlib.Path) -> None:
    advice = (
        f"npm could not install {JS_SDK_SPEC} into {folder}: is the npm registry reachable? Offline,"
        " install it there beforehand, or point DUALBUS_NODE_CACHE at a folder that has it."
    )
    try:
        done = subprocess.run(  # noqa: S603 - npm from PATH, a fixed package spec
            [npm, "install", "--no-audit", "--no-fund", "--prefix", str(folder), JS_SDK_SPEC],
            capture_output=True,
            text=True,
            timeout=_INSTALL_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{advice} (npm gave no answer in {_INSTALL_TIMEOUT_S} s)", pytrace=False)
    if done.returncode != 0 or not marker.exists():
        pytest.fail(f"{advice}\n{done.stderr[-2000:]}", pytrace=False)
