"""The images: slim base, one wheel built the same way for both, non-root, entry points that exist."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import typer.main

from dualbus.cli import app

ROOT = Path(__file__).resolve().parents[3]
DOCKER = ROOT / "infra" / "docker"
KINDS = ("producer", "consumer")


def _instructions(kind: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = (DOCKER / f"Dockerfile.{kind}").read_text(encoding="utf-8").replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return [(line.split(maxsplit=1)[0].upper(), line.split(maxsplit=1)[1]) for line in lines]


def _stages(kind: str) -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for instruction in _instructions(kind):
        if instruction[0] == "FROM":
            stages.append([])
        stages[-1].append(instruction)
    return stages


def test_both_images_build_the_wheel_identically() -> None:
    """The builder stage is the same in both Dockerfiles, so both images install the same wheel."""
    producer_builder, _ = _stages("producer")
    consumer_builder, _ = _stages("consumer")
    assert producer_builder == consumer_builder
    assert producer_builder[0] == ("FROM", "python:3.11-slim AS builder")
    assert ("RUN", "python -m pip wheel --no-cache-dir --wheel-dir /wheels .") in producer_builder


@pytest.mark.parametrize("kind", KINDS)
def test_final_stage_installs_only_the_builders_wheels_and_runs_unprivileged(kind: str) -> None:
    """The final stage is slim, installs from the builder's wheels without an index, and drops root."""
    _, final = _stages(kind)
    assert final[0] == ("FROM", "python:3.11-slim")
    installs = [args for op, args in final if op == "RUN" and "pip install" in args]
    assert len(installs) == 1
    assert "from=builder" in installs[0]
    assert "--no-index" in installs[0]
    users = [args for op, args in final if op == "USER"]
    assert users, "the image must not run as root"
    assert users[-1].split(":")[0] not in {"0", "root"}
    assert [op for op, _ in final].index("USER") < [op for op, _ in final].index("ENTRYPOINT")


@pytest.mark.parametrize("kind", KINDS)
def test_entry_point_exists(kind: str) -> None:
    """The entry point is a registered `dualbus` command or a runnable module of the wheel."""
    (entrypoint,) = [json.loads(args) for op, args in _instructions(kind) if op == "ENTRYPOINT"]
    if entrypoint[0] == "dualbus":
        command = typer.main.get_command(app)
        assert entrypoint[1] in command.commands  # type: ignore[attr-defined]
    else:
        assert entrypoint[:2] == ["python", "-m"]
        assert importlib.util.find_spec(f"{entrypoint[2]}.__main__") is not None


def test_entry_points_differ() -> None:
    """The producer and consumer images start different programs."""
    entrypoints = {kind: [a for op, a in _instructions(kind) if op == "ENTRYPOINT"] for kind in KINDS}
    assert entrypoints["producer"] != entrypoints["consumer"]


def _copied() -> set[str]:
    """The repository paths the builder copies."""
    return {
        source
        for op, args in _instructions("consumer")
        if op == "COPY" and "--from" not in args
        for source in args.split()[:-1]
    }


def test_the_builder_copies_every_folder_the_package_links_to() -> None:
    """The wheel's subpackages are links to top-level folders (dualbus/shared -> ../shared, ...): one the
    build does not copy would leave its link dangling and the image without that subpackage."""
    linked = {
        path.resolve().relative_to(ROOT).as_posix()
        for path in (ROOT / "dualbus").iterdir()
        if path.is_symlink()
    }
    assert linked
    assert linked <= _copied()


def test_dockerignore_admits_everything_the_build_copies() -> None:
    """Every path the builder copies is allowed by the .dockerignore allow-list."""
    allowed = {
        line[1:].rstrip("/")
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.startswith("!")
    }
    copied = _copied()
    assert copied
    assert copied <= allowed
