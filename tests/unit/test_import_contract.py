"""Each outside library is reached through one module of ours, which translates its exceptions.

``BOUNDARIES`` maps a library's import name to the only modules allowed to import it (paths from the
repository root). Putting another library behind a boundary is one line here. The check reads every Python
file of the shipped packages and the benchmarks with ``ast``, so an import inside a function or under
``TYPE_CHECKING`` counts as much as one at the top.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.sources import LINKED, ROOT, SHIPPED, imported_modules, python_files, reaches

SCANNED = (*SHIPPED, "bench")

# The pipeline's Service Bus boundary: clients and error translation, the SDK's types under our names,
# administration, messages, control messages and applying a topology.
SERVICE_BUS = frozenset(
    {
        "shared/bus.py",
        "shared/bus_admin.py",
        "shared/bus_types.py",
        "shared/control.py",
        "shared/messages.py",
        "shared/message_batches.py",
        "shared/topology_apply.py",
    }
)
# The pipeline's HTTP boundary: the OData client and plain requests (webhooks, health checks, tokens).
HTTP = frozenset({"shared/api.py", "shared/http.py"})
# Outside the pipeline on purpose, each with its own translation:
# - bench/consumer.py and bench/emulator.py measure the bare SDK loop that the consumer is compared with;
# - the sandbox twins stand in for Microsoft's systems and import nothing of the pipeline, so that a fault in
#   its boundary cannot hide on both sides of a test: the F&O twin's event endpoints (sandbox/fo/endpoints.py,
#   errors become DeliveryError) and the workload clients that fill and drive the twins;
# - bench/initial_sync.py and bench/_dataverse_bench.py load and watch the twins from outside, as the
#   workload does.
SANDBOX_HTTP = frozenset(
    {
        "sandbox/fo/server.py",
        "sandbox/workload/load.py",
        "sandbox/workload/run.py",
        "sandbox/workload/stream.py",
    }
)
BOUNDARIES: dict[str, frozenset[str]] = {
    "azure.identity": frozenset({"shared/identity.py"}),
    "azure.core": frozenset(
        {"shared/bus.py", "shared/bus_admin.py", "shared/identity.py", "shared/topology_apply.py"}
    ),
    "azure.servicebus": SERVICE_BUS | {"bench/consumer.py", "bench/emulator.py", "sandbox/fo/endpoints.py"},
    "httpx": HTTP | SANDBOX_HTTP | {"bench/_dataverse_bench.py", "bench/initial_sync.py"},
}


def offenders(library: str, allowed: frozenset[str], root: Path = ROOT) -> list[str]:
    """Files (relative paths) outside ``allowed`` that import ``library``."""
    return [
        relative
        for relative, path in python_files(SCANNED, root)
        if relative not in allowed
        and any(reaches(m, library) for m in imported_modules(path.read_text(encoding="utf-8")))
    ]


@pytest.mark.parametrize("library", sorted(BOUNDARIES))
def test_only_the_boundary_module_imports_the_library(library: str) -> None:
    """No module but the library's boundary imports it."""
    assert offenders(library, BOUNDARIES[library]) == []


@pytest.mark.parametrize("library", sorted(BOUNDARIES))
def test_the_boundary_module_exists_and_imports_the_library(library: str) -> None:
    """The allowed module really is the one using the library (a renamed boundary must update the list)."""
    for allowed in BOUNDARIES[library]:
        modules = imported_modules((ROOT / allowed).read_text(encoding="utf-8"))
        assert any(reaches(m, library) for m in modules), allowed


@pytest.mark.parametrize(
    "line",
    [
        "import azure.identity",
        "import azure.identity.aio as ai",
        "from azure.identity.aio import ManagedIdentityCredential",
        "from azure import identity",
        "def f():\n    from azure.identity import DefaultAzureCredential\n",
    ],
)
def test_a_stray_import_is_caught(tmp_path: Path, line: str) -> None:
    """The check fails on each way of writing the import, wherever in a file it sits."""
    stray = tmp_path / "consumers" / "stray.py"
    stray.parent.mkdir()
    stray.write_text(f"from __future__ import annotations\n{line}\n")
    assert offenders("azure.identity", BOUNDARIES["azure.identity"], tmp_path) == ["consumers/stray.py"]


@pytest.mark.parametrize(
    ("library", "line"),
    [
        ("azure.servicebus", "from azure.servicebus.aio import ServiceBusReceiver"),
        ("azure.servicebus", "from azure.servicebus.exceptions import MessageSizeExceededError"),
        ("azure.core", "from azure.core.exceptions import AzureError"),
        ("httpx", "import httpx"),
    ],
)
def test_a_stray_import_of_each_library_is_caught(tmp_path: Path, library: str, line: str) -> None:
    """A consumer module reaching the SDK or httpx directly fails the check."""
    stray = tmp_path / "consumers" / "stray.py"
    stray.parent.mkdir()
    stray.write_text(f"{line}\n")
    assert offenders(library, BOUNDARIES[library], tmp_path) == ["consumers/stray.py"]


def test_a_similar_name_is_not_the_library(tmp_path: Path) -> None:
    """``azure.identity_extras`` or ``azure.servicebus`` is not ``azure.identity``."""
    other = tmp_path / "shared" / "bus.py"
    other.parent.mkdir()
    other.write_text("import azure.identity_extras\nfrom azure.servicebus import ServiceBusClient\n")
    assert offenders("azure.identity", BOUNDARIES["azure.identity"], tmp_path) == []


def _bare_imports(root: Path) -> list[str]:
    def bare(path: Path) -> bool:
        modules = imported_modules(path.read_text(encoding="utf-8"))
        return any(reaches(m, name) for m in modules for name in LINKED)

    return [relative for relative, path in python_files((*SCANNED, "tests"), root) if bare(path)]


def test_our_packages_are_imported_through_dualbus_alone() -> None:
    """An install holds only ``dualbus``: ``import shared`` works in the repository and nowhere else."""
    assert _bare_imports(ROOT) == []


def test_a_bare_import_of_ours_is_caught(tmp_path: Path) -> None:
    """``from shared.bus import x`` is caught; ``from dualbus.shared.bus import x`` is the way."""
    for folder in (*SCANNED, "tests"):
        (tmp_path / folder).mkdir()
    (tmp_path / "tests" / "test_x.py").write_text("from shared.bus import bus_errors\n")
    (tmp_path / "bench" / "ok.py").write_text("from dualbus.shared.bus import bus_errors\n")
    assert _bare_imports(tmp_path) == ["tests/test_x.py"]


def test_only_the_service_bus_boundary_translates_its_calls() -> None:
    """Translation wraps each SDK call inside the boundary (``shared.bus_calls*``), not at the call sites."""
    calls = frozenset({"shared/bus_calls.py", "shared/bus_calls_sync.py"})
    assert offenders("dualbus.shared.bus.bus_errors", SERVICE_BUS | calls) == []


def _handled_names(source: str) -> Iterator[str]:
    """The dotted names each ``except`` clause in ``source`` names (``except (a.B, C)`` gives a.B and C)."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ExceptHandler) and node.type is not None:
            kinds = node.type.elts if isinstance(node.type, ast.Tuple) else [node.type]
            yield from (ast.unparse(kind) for kind in kinds)


def _bound_names(source: str) -> dict[str, str]:
    """What each name an import binds in ``source`` stands for (``from a import b as c`` gives c: a.b)."""
    bound = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                # ``import a.b`` binds a; ``import a.b as c`` binds c to a.b.
                if alias.asname:
                    bound[alias.asname] = alias.name
                else:
                    bound[alias.name.split(".")[0]] = alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            bound.update({a.asname or a.name: f"{node.module}.{a.name}" for a in node.names})
    return bound


def _resolve(dotted: str) -> object:
    """The object a dotted name (module path, then attributes) stands for; None when it cannot be found."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attribute in parts[cut:]:
            found = getattr(found, attribute, None)
        return found
    return None


def _library_exceptions(handled: object) -> Iterator[str]:
    for kind in handled if isinstance(handled, tuple) else (handled,):
        if isinstance(kind, type) and issubclass(kind, BaseException):
            module = kind.__module__
            if any(reaches(module, library) for library in BOUNDARIES):
                yield f"{module}.{kind.__qualname__}"


def handlers_of_library_errors(path: Path) -> list[str]:
    """The library exceptions that ``except`` clauses in ``path`` name, however the name reached the module.

    A name is followed through the module's imports to the object it stands for, so an SDK exception
    re-exported by a module of ours (or a tuple of them) counts as much as one imported from the SDK.
    """
    source = path.read_text(encoding="utf-8")
    bound = _bound_names(source)
    found = []
    for name in _handled_names(source):
        head, _, rest = name.partition(".")
        if head in bound:
            found.extend(_library_exceptions(_resolve(".".join(filter(None, (bound[head], rest))))))
    return found


def test_no_module_outside_a_boundary_handles_a_library_error() -> None:
    """Library exceptions are caught (and translated) in their boundary alone; elsewhere only ours are."""
    allowed = frozenset().union(*BOUNDARIES.values())
    found = {
        relative: handled
        for relative, path in python_files(SCANNED)
        if relative not in allowed and (handled := handlers_of_library_errors(path))
    }
    assert found == {}


@pytest.mark.parametrize(
    "lines",
    [
        "from dualbus.shared import bus\ntry:\n    pass\nexcept bus.MessageSizeExceededError:\n    pass\n",
        "from dualbus.shared.bus import _LOCK_LOST\ntry:\n    pass\nexcept _LOCK_LOST:\n    pass\n",
        "import azure.servicebus.exceptions as e\ntry:\n    pass\nexcept e.ServiceBusError:\n    pass\n",
        "import httpx as h\ntry:\n    pass\nexcept (OSError, h.HTTPError):\n    pass\n",
    ],
)
def test_a_library_error_handled_through_a_re_export_is_caught(tmp_path: Path, lines: str) -> None:
    """An SDK exception reached through one of our modules, a tuple or an alias is still the SDK's."""
    stray = tmp_path / "stray.py"
    stray.write_text(lines)
    assert handlers_of_library_errors(stray) != []


def test_our_errors_are_not_library_errors(tmp_path: Path) -> None:
    """Catching the translated errors is what every other module does."""
    fine = tmp_path / "fine.py"
    fine.write_text(
        "from dualbus.shared.bus import LockLostError\nfrom dualbus.shared.errors import BusError\n"
        "try:\n    pass\nexcept (LockLostError, BusError):\n    pass\n"
    )
    assert handlers_of_library_errors(fine) == []
