"""The layer boundaries of DESIGN.md are import-linter contracts in pyproject.toml: they hold on
this tree, they break when a forbidden import is added, and every wing of fluoro/ is in a layer.
"""

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from conftest import REPO

LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
PACKAGES = ("fluoro", "drivers", "ui", "benchmarks")


def _lint(cwd: Path) -> subprocess.CompletedProcess:
    # lint-imports puts its working directory first on sys.path, so a copy of the tree in
    # another folder is analysed instead of the installed one.
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def _contracts() -> list[dict]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]


def test_the_tree_keeps_every_contract():
    result = _lint(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(_contracts())} kept, 0 broken" in result.stdout


@pytest.fixture
def tree_copy(tmp_path):
    for name in PACKAGES:
        shutil.copytree(REPO / name, tmp_path / name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


@pytest.mark.parametrize(("module", "line", "contract"), [
    ("fluoro/imaging/_bad.py", "import PySide6", "Only ui imports Qt"),
    ("fluoro/dose/_bad.py", "import fluoro.doselog", "Layers"),
    ("fluoro/stream/_bad.py", "from fluoro.session import engine", "Layers"),
    ("fluoro/report/_bad.py", "import fluoro.cli.main", "Layers"),
    ("ui/_bad.py", "import fluoro.cli.main", "Layers"),
    ("drivers/_bad.py", "import ui.app", "drivers never imports ui"),
    ("fluoro/session/_bad.py", "import drivers", "only in fluoro.cli"),
    ("benchmarks/_bad.py", "import ui.app", "only display_rate.py"),
])
def test_a_forbidden_import_breaks_its_contract(tree_copy, module, line, contract):
    (tree_copy / module).write_text(f'"""A deliberate violation."""\n\n{line}\n')
    (name,) = [c["name"] for c in _contracts() if contract in c["name"]]
    result = _lint(tree_copy)
    assert result.returncode != 0, result.stdout
    text = " ".join(result.stdout.split())  # the report wraps long lines
    assert f"{name} BROKEN" in text, result.stdout
    assert module.removesuffix(".py").replace("/", ".") in text


def test_every_module_of_fluoro_is_in_a_layer():
    (layers,) = [c["layers"] for c in _contracts() if c["type"] == "layers"]
    named = {name.strip() for layer in layers for name in layer.split("|")}
    top = {p.stem for p in (REPO / "fluoro").glob("*.py")} | {
        p.parent.name for p in (REPO / "fluoro").glob("*/__init__.py")}
    top -= {"__init__", "__main__"}
    missing = sorted(f"fluoro.{name}" for name in top if f"fluoro.{name}" not in named)
    assert not missing, f"not in the layers contract of pyproject.toml: {missing}"
