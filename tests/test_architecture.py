"""The one-way rule tui -> learning -> store, checked on imports and on sys.modules."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

FORBIDDEN = {
    "store": {"textual", "tui", "learning", "torch", "transformers", "small_text"},
    "learning": {"textual", "tui"},
    "tui": {"sqlmodel", "sqlalchemy"},
}


def imported_modules(package: str) -> set[tuple[str, str]]:
    """(file, top-level module) for every import statement in a package."""
    found = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found |= {(str(path.relative_to(ROOT)), a.name.split(".")[0]) for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add((str(path.relative_to(ROOT)), node.module.split(".")[0]))
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_follow_the_one_way_rule(package: str) -> None:
    """No module imports against the grain: store and learning never see textual or tui."""
    bad = sorted((f, mod) for f, mod in imported_modules(package) if mod in FORBIDDEN[package])
    assert bad == []


def test_store_and_learning_load_without_textual() -> None:
    """Importing every module of the core pulls in neither textual nor the UI package."""
    probe = (
        "import importlib, pkgutil, sys, store, learning\n"
        "names = [m.name for p in (store, learning)\n"
        "         for m in pkgutil.walk_packages(p.__path__, p.__name__ + '.')]\n"
        "for name in names: importlib.import_module(name)\n"
        "print(len(names), sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'tui')))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    count, loaded = result.stdout.strip().split(" ", 1)
    assert int(count) > 40  # every module of both packages, not only their __init__
    assert loaded == "[]"


def test_source_files_stay_readable() -> None:
    """No module outside tests grows past 400 lines; split it by concept instead."""
    long = [
        (str(p.relative_to(ROOT)), n)
        for pkg in ("store", "learning", "tui", "seeds", "bench")
        for p in Path(ROOT / pkg).rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 400
    ]
    assert long == []


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """import-linter's contracts from pyproject.toml, run over the packages under ``root``."""
    exe = Path(sys.executable).with_name("lint-imports")
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(exe), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        capture_output=True,
        text=True,
        cwd=root,
        env=env,
    )


def test_import_contracts_are_kept() -> None:
    """The layers tui -> learning -> store and the forbidden imports hold for every module."""
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "back_import", "contract"),
    [
        ("store/db.py", "import learning.metrics", "tui -> learning -> store"),
        ("learning/metrics.py", "import tui.safe", "tui -> learning -> store"),
        ("store/labels.py", "import torch", "store never imports the model stack"),
        ("learning/runtimes.py", "import learning.encoders", "learning: no cycles between"),
        ("store/events.py", "import store.repository", "store: no cycles between"),
        ("tui/screens/base.py", "import tui.app", "tui: no cycles between"),
    ],
)
def test_a_back_import_breaks_the_contracts(
    tmp_path: Path, module: str, back_import: str, contract: str
) -> None:
    """The contracts can fail: the same tree with one import against the grain is refused."""
    for package in ("store", "learning", "tui"):
        shutil.copytree(
            ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    target = tmp_path / module
    target.write_text(target.read_text() + f"\n{back_import}  # deliberately against the grain\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert f"{contract}" in result.stdout and "BROKEN" in result.stdout
    dotted = module.replace("/", ".").removesuffix(".py")
    # layers name the module in full; a cycle names the sibling it lies in: ".screens ->"
    assert dotted in result.stdout or "." + dotted.split(".")[1] + " ->" in result.stdout
