"""The one-way rule tui -> learning -> store, checked on imports and on sys.modules."""

from __future__ import annotations

import ast
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
    """Importing the core pulls in neither textual nor the UI package."""
    probe = (
        "import sys, store, store.io, learning\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'tui')))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_source_files_stay_readable() -> None:
    """No module outside tests grows past 600 lines; split it by concept instead."""
    long = [
        (str(p.relative_to(ROOT)), n)
        for pkg in ("store", "learning", "tui", "seeds")
        for p in Path(ROOT / pkg).rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 600
    ]
    assert long == []
