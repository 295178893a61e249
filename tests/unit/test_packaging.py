"""What ``pip install .`` puts into site-packages: the ``dualbus`` package alone, with its data files.

The repository keeps its top-level folders (shared, consumers...); dualbus/ links to them, and the build
copies what the links point to. A wheel is built here exactly as pip builds one for an install.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from tests.unit.sources import LINKED, ROOT, python_files

_NOT_SOURCE = (".git", "build", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis", "node_modules")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    build = tmp_path_factory.mktemp("build")
    # pip builds in the source tree (build/, *.egg-info): a copy keeps the repository as it is.
    source = build / "source"
    shutil.copytree(ROOT, source, symlinks=True, ignore=shutil.ignore_patterns(*_NOT_SOURCE))
    subprocess.run(  # noqa: S603 - pip of this interpreter, on a copy of this repository
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), "."],
        cwd=source,
        check=True,
        env={**os.environ, "TMPDIR": str(build), "PIP_NO_INPUT": "1"},
        timeout=300,
    )
    [built] = out.glob("dualbus-*.whl")
    return zipfile.ZipFile(built)


@pytest.mark.timeout(300)
def test_the_wheel_installs_one_top_level_package(wheel: zipfile.ZipFile) -> None:
    """Nothing of ours lands in site-packages under a generic name such as ``shared`` or ``consumers``."""
    tops = {name.split("/", 1)[0] for name in wheel.namelist()}
    assert {top for top in tops if not top.endswith(".dist-info")} == {"dualbus"}


@pytest.mark.timeout(300)
def test_the_linked_packages_travel_inside_dualbus_with_their_data(wheel: zipfile.ZipFile) -> None:
    """Each linked folder's modules and data files are in the wheel as real files under dualbus/."""
    names = set(wheel.namelist())
    for folder in LINKED:
        sources = [relative for relative, _ in python_files([folder])]
        assert sources, folder
        assert {f"dualbus/{source}" for source in sources} <= names
    data = [p.relative_to(ROOT).as_posix() for p in (ROOT / "shared" / "maps" / "data").glob("*.json")]
    assert data
    assert {f"dualbus/{name}" for name in data} <= names
    assert "dualbus/d365/fo/CustomersV3.json" in names
    assert "dualbus/py.typed" in names
