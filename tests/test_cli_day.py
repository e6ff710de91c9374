"""The command line in an expert's day: fast help, honest help text, progress, clear refusals."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tui.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_help_imports_no_database_ui_or_dataframe_library() -> None:
    """`techne --help` loads neither SQLAlchemy/SQLModel nor Textual, pandas or pyarrow
    (together 0.4 s of the 0.7 s the CLI module once took to import)."""
    probe = (
        "import sys\nfrom tui.cli import main\nmain(['--help'])\n"
        "heavy = [m for m in ('sqlalchemy', 'sqlmodel', 'textual', 'pandas', 'pyarrow', 'numpy', "
        "'torch', 'sklearn') if m in sys.modules]\nprint('HEAVY', heavy)"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout


@pytest.mark.parametrize("command", [[], ["import"], ["export"], ["demo"], ["retrain"]])
def test_help_shows_no_type_after_flags(
    capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    """Flags (`--json`, `--help`, `--fresh`) take no value, so help shows no `<bool>` after them;
    options that take one still show its type."""
    code, out, _ = run(capsys, *command, "--help")
    assert code == 0 and "--help" in out
    assert "<bool>" not in out
    if command == ["import"]:
        assert "<str>" in out
