"""The command line in an expert's day: fast help, honest help text, progress, clear refusals."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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


def test_annotate_off_a_terminal_refuses_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """stdout to a file or pipe: `techne annotate` exits 1 at once with one line on stderr,
    writes nothing (no escape codes) and does not wait for keys."""
    ws = tmp_path / "w"
    assert main(["init", str(ws)]) == 0
    capsys.readouterr()
    code, out, err = run(capsys, "-w", str(ws), "annotate")
    assert code == 1 and out == ""
    assert err.strip().count("\n") == 0
    assert "techne annotate needs a terminal" in err and "redirected" in err
    exe = Path(sys.executable).with_name("techne")
    result = subprocess.run(
        [exe, "-w", str(ws), "annotate", "--annotator", "dana"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith("error: techne annotate needs a terminal, but its input and ")
    assert "\x1b" not in result.stderr and result.stderr.count("\n") == 1
