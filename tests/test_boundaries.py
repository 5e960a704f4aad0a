"""The layer boundaries of DESIGN.md, checked on the source (napari-style import contract)."""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
QT = {"PySide6", "PyQt5", "PyQt6", "PySide2", "pyqtgraph"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _modules(package: str) -> list[Path]:
    return sorted((REPO / package).rglob("*.py"))


@pytest.mark.parametrize("path", _modules("fluoro"), ids=lambda p: str(p.relative_to(REPO)))
def test_core_imports_no_qt_and_no_outer_layer(path: Path):
    found = _imports(path)
    assert not found & QT, f"{path}: only ui/ may import Qt or pyqtgraph"
    if path.name != "cli.py":  # the composition root may open drivers and windows
        assert not found & {"drivers", "ui"}, f"{path}: fluoro/ must not import drivers/ or ui/"


@pytest.mark.parametrize("path", _modules("drivers"), ids=lambda p: str(p.relative_to(REPO)))
def test_drivers_import_no_ui_and_no_qt(path: Path):
    found = _imports(path)
    assert not found & (QT | {"ui"}), f"{path}: drivers/ must not import ui/ or Qt"


def test_the_checker_sees_imports():
    # guard against a checker that passes because it sees nothing
    assert {"numpy", "fluoro"} <= _imports(REPO / "fluoro" / "pipeline.py")
    assert "drivers" in _imports(REPO / "fluoro" / "cli.py")
