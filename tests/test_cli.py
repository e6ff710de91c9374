"""The `techne` command line: init, import, export, status, demo; errors and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ANNOMI_ARGS, ROOT
from tests.postgres import PostgresServer
from tui.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_init_creates_a_workspace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """init writes techne.toml and techne.db; a second init there is refused."""
    ws = tmp_path / "study"
    code, out, _ = run(capsys, "init", str(ws), "--codebook", "annomi")
    assert code == 0 and "Created workspace" in out
    assert (ws / "techne.toml").is_file() and (ws / "techne.db").is_file()
    assert 'codebook = "annomi"' in (ws / "techne.toml").read_text()
    code, _, err = run(capsys, "init", str(ws))
    assert code == 1 and "already a Techne workspace" in err


def test_init_with_unknown_codebook_lists_the_bundled_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A wrong codebook name fails, names the choices and leaves no folder behind."""
    code, _, err = run(capsys, "init", str(tmp_path / "w"), "--codebook", "nope")
    assert code == 1 and "annomi, mi, supportive" in err
    assert not (tmp_path / "w").exists()


def test_init_with_codebook_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A custom codebook file is validated and installed."""
    book = tmp_path / "mine.toml"
    book.write_text('[codebook]\nkey = "mine"\n[[techniques]]\nkey = "praise"\nhotkey = "p"\n')
    code, _, _ = run(capsys, "init", str(tmp_path / "w"), "--codebook", str(book))
    assert code == 0
    code, out, _ = run(capsys, "-w", str(tmp_path / "w"), "status", "--json")
    assert json.loads(out)["labelled_per_technique"] == {"praise": 0}


def test_annomi_import_then_status_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], annomi_csv: Path
) -> None:
    """The issue's acceptance command: status --json shows exactly AnnoMI's counts."""
    ws = str(tmp_path / "w")
    assert run(capsys, "init", ws, "--codebook", "annomi")[0] == 0
    code, out, err = run(capsys, "-w", ws, "import", str(annomi_csv), *ANNOMI_ARGS)
    assert code == 0, err
    assert "9,699 new messages" in out
    code, out, _ = run(capsys, "-w", ws, "status", "--json")
    status = json.loads(out)
    assert (status["messages"], status["conversations"], status["labelled"]) == (9699, 133, 4882)
    assert status["labelled_per_technique"] == {
        "reflection": 1296,
        "question": 1386,
        "therapist_input": 614,
        "other": 1586,
    }
    assert status["per_annotator"] == {"annomi": {"role": "expert", "labelled": 4882}}
    assert status["rounds"] == 0 and status["active_model"] is None


def test_team_mode_on_postgres(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], postgres: PostgresServer
) -> None:
    """init --db puts the store in PostgreSQL; every later command finds it from techne.toml."""
    url = postgres.new_database()
    ws = str(tmp_path / "team")
    assert run(capsys, "init", ws, "--codebook", "annomi", "--db", url)[0] == 0
    assert not (tmp_path / "team" / "techne.db").exists()
    data = tmp_path / "m.jsonl"
    data.write_text('{"text": "How are you?", "code": "question"}\n')
    code, _, err = run(capsys, "-w", ws, "import", str(data), "--label", "code", "--annotator", "a")
    assert code == 0, err
    status = json.loads(run(capsys, "-w", ws, "status", "--json")[1])
    assert status["labelled_per_technique"]["question"] == 1


def test_errors_exit_non_zero_with_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No workspace, missing file, bad option: exit 1 or 2 with a message, no traceback."""
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "status")
    assert code == 1 and "no Techne workspace" in err and "Traceback" not in err
    run(capsys, "init", "w")
    code, _, err = run(capsys, "-w", "w", "import", "missing.csv")
    assert code == 1 and "missing.csv: no such file" in err
    code, _, err = run(capsys, "-w", "w", "import", "x.csv", "--skip-bad")
    assert code == 2 and "--rejects" in err
    code, _, err = run(capsys, "-w", "w", "status", "--bogus")
    assert code == 2
    code, _, err = run(capsys, "-w", "w", "export", "out.jsonl", "--split", "0.5,0.5")
    assert code == 2 and "summing to 1" in err


@pytest.mark.parametrize("command", ["init", "import", "export", "status", "demo"])
def test_every_command_has_help_with_examples(
    capsys: pytest.CaptureFixture[str], command: str
) -> None:
    """`techne CMD --help` explains the command and shows an example."""
    code, out, _ = run(capsys, command, "--help")
    assert code == 0 and "Example" in out


def test_help_does_not_import_heavy_libraries() -> None:
    """`techne --help` stays fast: no torch, transformers, datasets or sklearn imported."""
    probe = (
        "import sys\nfrom tui.cli import main\nmain(['--help'])\n"
        "heavy = [m for m in ('torch', 'transformers', 'datasets', 'sklearn', 'small_text') "
        "if m in sys.modules]\nprint('HEAVY', heavy)"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout


def test_installed_console_script_runs(tmp_path: Path) -> None:
    """The `techne` entry point works as an installed command and returns exit codes."""
    exe = Path(sys.executable).with_name("techne")
    ok = subprocess.run([exe, "init", str(tmp_path / "w")], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run(
        [exe, "-w", str(tmp_path / "nope"), "status"], capture_output=True, text=True
    )
    assert bad.returncode == 1 and "error:" in bad.stderr


def test_demo_builds_a_workspace_with_seed_labels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`techne demo` imports the bundled corpus with its seed labels; running it again is a no-op."""
    path = str(tmp_path / "demo")
    code, out, err = run(capsys, "demo", "--path", path)
    assert code == 0, err
    status = json.loads(run(capsys, "-w", path, "status", "--json")[1])
    assert status["conversations"] >= 60 and status["labelable_messages"] >= 600
    assert status["labelled"] >= 300 and status["codebook"] == "mi"
    assert status["active_model"]["tag"] == "v1" and status["rounds"] == 1
    assert all(count > 0 for count in status["labelled_per_technique"].values())
    assert run(capsys, "demo", "--path", path)[0] == 0
    assert json.loads(run(capsys, "-w", path, "status", "--json")[1]) == status


def test_demo_works_from_the_built_wheel(tmp_path: Path) -> None:
    """The wheel carries seeds/: the demo runs from it with the source tree out of reach."""
    dist = tmp_path / "dist"
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(dist),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr
    wheel = next(dist.glob("techne-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "seeds/demo/conversations.jsonl" in names and "seeds/codebooks/mi.toml" in names
    unpacked = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(unpacked)
    # -S skips site-packages' .pth files, so the editable install of the source tree is
    # invisible; dependencies come from the venv's site-packages, Techne only from the wheel.
    probe = (
        "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]\n"
        "import tui, seeds; assert tui.__file__.startswith(sys.argv[1]), tui.__file__\n"
        "assert seeds.__file__.startswith(sys.argv[1])\n"
        "from tui.cli import main; sys.exit(main(['demo', '--path', 'demo']))"
    )
    purelib = sysconfig.get_paths()["purelib"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-S", "-c", probe, str(unpacked), purelib],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "labelled" in result.stdout and (tmp_path / "demo" / "techne.db").exists()
