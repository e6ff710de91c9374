"""Failures the input or the machine causes end in one line naming what failed, never a
traceback: deep or broken JSONL, bad names, concurrent imports, a full disk. Files stay
private and exports never clobber. Stores on SQLite and PostgreSQL where one is involved."""

from __future__ import annotations

import errno
import json
import os
import socket
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, event, text

from store import Repository
from store.db import check_schema
from store.errors import InputError, StoreError
from store.io import ColumnMap, import_file
from store.workspace import load_workspace
from tests.conftest import copy_workspace
from tests.test_team import _disagree, team  # noqa: F401, F811  (team: a fixture)
from tui.cli import main

TECHNE = str(Path(sys.executable).with_name("techne"))
COLS = ColumnMap(text="text", speaker="speaker", conversation="conversation", order="turn", id="id")
CLI_COLS = ["--speaker", "speaker", "--conversation", "conversation", "--order", "turn"]


def rows(n: int, conversation: str = "c1", start: int = 0, **extra: Any) -> list[dict[str, Any]]:
    return [
        {
            "id": f"{conversation}-{i}",
            "conversation": conversation,
            "turn": i,
            "speaker": "therapist",
            "text": f"message {i}",
            **extra,
        }
        for i in range(start, start + n)
    ]


def write_jsonl(path: Path, items: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in items), encoding="utf-8")
    return path


def one_line_error(err: str) -> str:
    assert "Traceback" not in err
    assert err.startswith("error: "), err
    assert err.count("\n") == 1, err
    return err


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    path = tmp_path / "ws"
    assert main(["init", str(path), "--codebook", "annomi"]) == 0
    return path


# -- input ------------------------------------------------------------------------------------


def deep_line(depth: int) -> str:
    head = '{"id": "d", "conversation": "c1", "turn": 9, "speaker": "therapist", "text": "x", '
    return head + '"meta": ' + "[" * depth + "]" * depth + "}"


@pytest.mark.parametrize("depth", [100_000, 500])
def test_deeply_nested_jsonl_is_an_input_error(
    annomi_repo: Repository, tmp_path: Path, depth: int
) -> None:
    """A JSONL line nested 100,000 deep (past Python's recursion limit) or just deeper than
    any real metadata: file and line named; under --skip-bad the line is rejected."""
    good = "".join(json.dumps(r) + "\n" for r in rows(2))
    path = tmp_path / "deep.jsonl"
    path.write_text(good + deep_line(depth) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match="nested more than") as caught:
        import_file(annomi_repo, path, COLS)
    assert caught.value.line == 3
    assert annomi_repo.status()["messages"] == 0
    report = import_file(annomi_repo, path, COLS, skip_bad=True, rejects_path=tmp_path / "r.jsonl")
    assert (report.messages_added, report.rejected) == (2, 1)


def test_deep_jsonl_on_the_command_line(
    ws: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "deep.jsonl"
    path.write_text(deep_line(100_000) + "\n", encoding="utf-8")
    args = ["-w", str(ws), "import", str(path), *CLI_COLS, "--id", "id"]
    assert main(args) == 1
    err = one_line_error(capsys.readouterr().err)
    assert "deep.jsonl, line 1" in err and "nested" in err
    rejects = tmp_path / "r.jsonl"
    assert main([*args, "--skip-bad", "--rejects", str(rejects)]) == 0
    assert "Traceback" not in capsys.readouterr().err
    (reject,) = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert reject["line"] == 1 and "nested" in reject["problem"]


def test_lone_surrogate_is_an_input_error(annomi_repo: Repository, tmp_path: Path) -> None:
    """`\\ud800` alone is valid JSON but not text: refused with its line and column; a proper
    surrogate pair (an emoji written as escapes) imports."""
    path = tmp_path / "s.jsonl"
    pair = '{"id": "ok", "conversation": "c1", "turn": 0, "speaker": "t", "text": "\\ud83d\\ude00"}'
    lone = '{"id": "bad", "conversation": "c1", "turn": 1, "speaker": "t", "text": "a\\ud800b"}'
    path.write_text(pair + "\n" + lone + "\n", encoding="utf-8")
    with pytest.raises(InputError, match="unpaired surrogate") as caught:
        import_file(annomi_repo, path, COLS)
    assert (caught.value.line, caught.value.column) == (2, "text")
    path.write_text(pair + "\n", encoding="utf-8")
    assert import_file(annomi_repo, path, COLS).messages_added == 1
    assert annomi_repo.message("ok").text == "\U0001f600"


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_nul_in_a_metadata_column_is_refused(
    annomi_repo: Repository, tmp_path: Path, fmt: str
) -> None:
    """A NUL byte in any column, past the sniffed start of the file: file, line, column."""
    items = rows(40, note="padding " * 40)
    items[30]["note"] = "before\x00after"
    path = tmp_path / f"nul.{fmt}"
    if fmt == "jsonl":
        write_jsonl(path, items)
    else:
        import csv

        with path.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(items[0]))
            writer.writeheader()
            writer.writerows(items)
        assert path.read_bytes().index(b"\x00") > 8192
    with pytest.raises(InputError, match="NUL byte") as caught:
        import_file(annomi_repo, path, COLS)
    assert (caught.value.line, caught.value.column) == (32 if fmt == "csv" else 31, "note")
    assert annomi_repo.status()["messages"] == 0


# -- names ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("two\nlines", "unprintable character U+000A"),
        ("esc\x1b[2J", "unprintable character U+001B"),
        ("rtl\u202eevil", "unprintable character U+202E"),
        ("x" * 65, "at most 64"),
    ],
)
def test_annotator_names_are_checked_where_made(
    ws: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, problem: str
) -> None:
    """`annotators add`, `--annotator` and an `--annotator-column` cell: printable, one line,
    at most 64 characters; the column case names file, line and column."""
    assert main(["-w", str(ws), "annotators", "--json"]) == 0
    before = json.loads(capsys.readouterr().out)  # the workspace's creator, its maintainer
    assert main(["-w", str(ws), "annotators", "add", name]) == 1
    assert problem in one_line_error(capsys.readouterr().err)
    src = write_jsonl(tmp_path / "l.jsonl", rows(2, label="question", coder="dana"))
    base = ["-w", str(ws), "import", str(src), *CLI_COLS, "--id", "id", "--label", "label"]
    assert main([*base, "--annotator", name]) == 1
    assert problem in one_line_error(capsys.readouterr().err)
    items = [
        *rows(1, label="question", coder="dana"),
        *rows(1, start=1, label="question", coder=name),
    ]
    src = write_jsonl(tmp_path / "l.jsonl", items)
    assert main([*base, "--annotator-column", "coder"]) == 1
    err = one_line_error(capsys.readouterr().err)
    assert "l.jsonl, line 2, column 'coder'" in err and problem in err
    assert main(["-w", str(ws), "annotators", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == before


# -- concurrent imports -----------------------------------------------------------------------


def test_concurrent_imports_share_a_new_annotator_and_conversation(
    store_url: str, tmp_path: Path
) -> None:
    """Import A has created annotator `shared` and conversation c1 but not committed when
    import B, creating the same two, starts: B waits, then takes them as they are. Both
    imports succeed; each row exists once."""
    setup = Repository.open(store_url, create=True)
    import seeds
    from store import load_codebook_file

    setup.install_codebook(load_codebook_file(seeds.CODEBOOKS / "annomi.toml"))
    setup.close()
    labelled = ColumnMap(**{**COLS.__dict__, "label": "label", "annotator": "shared"})
    first = write_jsonl(tmp_path / "a.jsonl", rows(3, label="question"))
    second = write_jsonl(tmp_path / "b.jsonl", rows(3, start=3, label="question"))
    a_ready, release, b_writing = threading.Event(), threading.Event(), threading.Event()
    results: dict[str, Any] = {}

    def hold(done: int, total: int) -> None:
        if done == total:  # every row written, the transaction still open
            a_ready.set()
            assert release.wait(60)

    def run(name: str, path: Path, progress: Any, repo: Repository) -> None:
        try:
            results[name] = import_file(repo, path, labelled, progress=progress, max_text_chars=99)
        except BaseException as exc:  # reported below
            results[name] = exc

    repo_a = Repository.open(store_url, codebook_key="annomi")
    repo_b = Repository.open(store_url, codebook_key="annomi")
    marker = "BEGIN IMMEDIATE" if repo_b.dialect == "sqlite" else "INSERT INTO annotators"

    @event.listens_for(repo_b.engine, "before_cursor_execute")
    def _b_writes(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
        if statement.startswith(marker):
            b_writing.set()

    thread_a = threading.Thread(target=run, args=("a", first, hold, repo_a))
    thread_b = threading.Thread(target=run, args=("b", second, None, repo_b))
    try:
        thread_a.start()
        assert a_ready.wait(60)
        thread_b.start()
        assert b_writing.wait(60)
        if repo_b.dialect == "postgresql":  # B is blocked on A's uncommitted annotator row
            deadline = time.monotonic() + 30
            with repo_a.engine.connect() as conn:
                while time.monotonic() < deadline:
                    waiting = conn.execute(
                        text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
                    ).scalar_one()
                    if waiting:
                        break
                    time.sleep(0.02)
            assert waiting
        release.set()
        thread_a.join(60)
        thread_b.join(60)
    finally:
        release.set()
    assert not isinstance(results["a"], BaseException), results["a"]
    assert not isinstance(results["b"], BaseException), results["b"]
    assert results["a"].conversations_added + results["b"].conversations_added == 1
    status = repo_a.status()
    assert (status["messages"], status["conversations"]) == (6, 1)
    assert repo_a.annotators() == {"shared": "expert"}
    assert status["per_annotator"]["shared"]["labelled"] == 6
    repo_a.close()
    repo_b.close()


# -- a full disk ------------------------------------------------------------------------------


def disk_full_on_save(repo: Repository) -> Any:
    """The driver's own disk-full error on the next annotation event written (SQLite's
    SQLITE_FULL, PostgreSQL's 53100): a mock at the database boundary."""

    def refuse(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
        if statement.startswith("INSERT INTO annotation_events"):
            if repo.dialect == "sqlite":
                raise sqlite3.OperationalError("database or disk is full")
            import psycopg

            raise psycopg.errors.DiskFull("could not extend file: No space left on device")

    event.listen(repo.engine, "before_cursor_execute", refuse)
    return refuse


@pytest.mark.slow
async def test_disk_full_while_saving_in_the_app(store_url: str, tmp_path: Path) -> None:
    """The save fails: the app says so in place, keeps running, keeps the message on screen
    unconfirmed and stores nothing; once there is room again the same key saves it."""
    from textual.widgets import Static

    from tui.app import make_app
    from tui.screens.annotate import AnnotateScreen

    ws = tmp_path / "ws"
    assert main(["init", str(ws), "--codebook", "annomi", "--db", store_url]) == 0
    src = write_jsonl(tmp_path / "m.jsonl", rows(3))
    assert main(["-w", str(ws), "import", str(src), *CLI_COLS, "--id", "id"]) == 0
    app = make_app(ws, annotator="dana")
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            screen = app.screen
            assert isinstance(screen, AnnotateScreen) and screen.current is not None
            first = screen.current.id
            refuse = disk_full_on_save(app.repo)
            await pilot.press("1", "enter")
            await pilot.pause()
            status = str(screen.query_one("#statusline", Static).render())
            assert "NOT SAVED" in status
            assert "disk is full" in status or "No space left" in status
            assert screen.current is not None and screen.current.id == first
            assert app.repo.events(first) == []
            assert screen.session.saved == 0 and not screen.session.undo_stack
            event.remove(app.repo.engine, "before_cursor_execute", refuse)
            await pilot.press("enter")
            await pilot.pause()
            assert [e.kind for e in app.repo.events(first)] == ["label"]
            assert screen.current is not None and screen.current.id != first
    finally:
        app.repo.close()


@pytest.mark.slow
async def test_disk_full_while_adjudicating(team: Any) -> None:  # noqa: F811
    """A lead's decision the store refuses: said in place, the dispute stays open."""
    from tui.app import make_app
    from tui.screens.adjudicate import AdjudicateScreen

    mids = _disagree(team)
    app = make_app(team.root, annotator="maria", adjudicate=True)
    try:
        async with app.run_test(size=(120, 36)) as pilot:
            screen = app.screen
            assert isinstance(screen, AdjudicateScreen)
            refuse = disk_full_on_save(app.repo)
            await pilot.press("1", "enter")
            await pilot.pause()
            assert [d.message_id for d in screen.disputes] == mids[:2]
            assert any("NOT SAVED" in n.message for n in app._notifications)
            assert [e.kind for e in app.repo.events(mids[0])].count("adjudicate") == 0
            event.remove(app.repo.engine, "before_cursor_execute", refuse)
            await pilot.press("enter")
            await pilot.pause()
            assert [d.message_id for d in screen.disputes] == [mids[1]]
    finally:
        app.repo.close()


def enospc(*_: Any, **__: Any) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_disk_full_during_export(
    ws: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """ENOSPC when the export is flushed to disk: one line, exit 1, the earlier export intact
    and no temporary file left behind."""
    src = write_jsonl(tmp_path / "m.jsonl", rows(3, label="question"))
    args = [*CLI_COLS, "--id", "id", "--label", "label", "--annotator", "a"]
    assert main(["-w", str(ws), "import", str(src), *args]) == 0
    out = tmp_path / "out" / "gold.jsonl"
    out.parent.mkdir()
    assert main(["-w", str(ws), "export", str(out)]) == 0
    before = sorted(p.name for p in out.parent.iterdir())
    content = out.read_bytes()
    capsys.readouterr()
    monkeypatch.setattr("store.io.atomic.os.fsync", enospc)
    assert main(["-w", str(ws), "export", str(out), "--force", "--context", "0"]) == 1
    assert "No space left on device" in one_line_error(capsys.readouterr().err)
    assert out.read_bytes() == content
    assert sorted(p.name for p in out.parent.iterdir()) == before


@pytest.mark.slow
def test_disk_full_during_retrain(
    trained_demo: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """ENOSPC while the new model is written: one line, exit 1, the active model unchanged."""
    ws = copy_workspace(trained_demo, tmp_path / "demo")
    repo = Repository.open(f"sqlite:///{ws / 'techne.db'}")
    active = repo.artifacts.active()
    # one new gold label, so that the round has something to train (else it registers nothing)
    repo.close()
    repo = load_workspace(ws).open_repository()
    key = repo.codebook().techniques[0].key
    repo.ensure_annotator("tester")
    repo.add_event(repo.queue("tester")[0], "tester", "label", [key])
    repo.close()
    real_write_text = Path.write_text

    def full_under_models(self: Path, *args: Any, **kwargs: Any) -> int:
        if "models" in self.parts:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", full_under_models)
    assert main(["-w", str(ws), "retrain"]) == 1
    assert "No space left on device" in one_line_error(capsys.readouterr().err)
    repo = Repository.open(f"sqlite:///{ws / 'techne.db'}")
    assert repo.artifacts.active() == active
    repo.close()


@pytest.mark.parametrize("cause", ["database or disk is full", "disk I/O error"])
def test_a_store_that_cannot_be_read_for_lack_of_space_does_not_suggest_init(cause: str) -> None:
    """With 0 bytes free SQLite cannot even open its WAL: the error says so, and does not send
    the user to `techne init` (which would not help)."""

    def connect() -> Any:
        raise sqlite3.OperationalError(cause)

    engine = create_engine("sqlite://", creator=connect)
    with pytest.raises(StoreError) as caught:
        check_schema(engine)
    message = str(caught.value)
    assert cause in message and "disk full" in message and "techne init" not in message


# -- private by default -----------------------------------------------------------------------


@pytest.mark.slow
def test_new_workspace_is_private_under_umask_022(tmp_path: Path) -> None:
    """A demo workspace built under umask 022 (init, import, a trained model): the folder and
    every folder in it 0700, every file 0600; the store's -wal and -shm too."""
    ws = tmp_path / "demo"
    script = f"umask 022 && exec {TECHNE} demo --path {ws} --status"
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (ws / "models").is_dir() and any((ws / "models").rglob("*.json"))
    wrong = {
        str(path): oct(stat.S_IMODE(path.stat().st_mode))
        for path in [ws, *ws.rglob("*")]
        if stat.S_IMODE(path.stat().st_mode) != (0o700 if path.is_dir() else 0o600)
    }
    assert wrong == {}
    old = os.umask(0o022)
    try:
        repo = Repository.open(f"sqlite:///{ws / 'techne.db'}")
        with repo.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            for suffix in ("-wal", "-shm"):
                side = ws / f"techne.db{suffix}"
                assert stat.S_IMODE(side.stat().st_mode) == 0o600, suffix
        repo.close()
    finally:
        os.umask(old)


def test_init_is_private_without_the_cli_umask(tmp_path: Path) -> None:
    """Creating a workspace from code (not through `techne`) under umask 022: still private."""
    from store.workspace import init_workspace

    old = os.umask(0o022)
    try:
        init_workspace(tmp_path / "ws", "mi", None)
    finally:
        os.umask(old)
    for name, mode in {
        "": 0o700,
        "models": 0o700,
        "techne.toml": 0o600,
        "techne.db": 0o600,
    }.items():
        assert stat.S_IMODE((tmp_path / "ws" / name).stat().st_mode) == mode, name


# -- export never clobbers; reading never creates ---------------------------------------------


def test_export_never_clobbers(
    ws: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An existing output is refused unless --force, which replaces it atomically (a new
    file renamed over it, nothing left aside); devices, FIFOs and sockets are refused even
    with --force; a missing parent folder is an error."""
    src = write_jsonl(tmp_path / "m.jsonl", rows(3, label="question"))
    args = [*CLI_COLS, "--id", "id", "--label", "label", "--annotator", "a"]
    assert main(["-w", str(ws), "import", str(src), *args]) == 0
    folder = tmp_path / "out"
    folder.mkdir()
    existing = folder / "existing.jsonl"
    existing.write_text("keep me\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["-w", str(ws), "export", str(existing)]) == 1
    err = one_line_error(capsys.readouterr().err)
    assert "exists" in err and "--force" in err
    assert existing.read_text(encoding="utf-8") == "keep me\n"
    inode = existing.stat().st_ino
    assert main(["-w", str(ws), "export", str(existing), "--force"]) == 0
    assert existing.stat().st_ino != inode  # a new file renamed into place
    assert len(existing.read_text(encoding="utf-8").splitlines()) == 3
    assert sorted(p.name for p in folder.iterdir()) == ["existing.jsonl", "existing.jsonl.card.md"]
    capsys.readouterr()

    fifo = folder / "fifo.jsonl"
    os.mkfifo(fifo)
    sock_path = folder / "sock.jsonl"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(sock_path))
    try:
        for target in (fifo, sock_path, Path("/dev/null")):
            assert main(["-w", str(ws), "export", str(target), "--format", "jsonl", "--force"]) == 1
            assert "not a regular file" in one_line_error(capsys.readouterr().err)
    finally:
        server.close()
    assert stat.S_ISFIFO(fifo.stat().st_mode) and stat.S_ISCHR(os.stat("/dev/null").st_mode)

    missing = tmp_path / "no" / "such" / "gold.jsonl"
    assert main(["-w", str(ws), "export", str(missing)]) == 1
    assert "no such folder" in one_line_error(capsys.readouterr().err)
    assert not (tmp_path / "no").exists()


def test_read_only_commands_create_no_files(
    ws: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`status --db sqlite:///missing.db` fails and creates nothing; status, history,
    agreement, annotators, adjudicate --list and models list leave the workspace as it was."""
    missing = tmp_path / "missing.db"
    assert main(["-w", str(ws), "--db", f"sqlite:///{missing}", "status"]) == 1
    assert "no Techne store" in one_line_error(capsys.readouterr().err)
    assert not missing.exists()
    src = write_jsonl(tmp_path / "m.jsonl", rows(2))
    assert main(["-w", str(ws), "import", str(src), *CLI_COLS, "--id", "id"]) == 0
    before = sorted(p.name for p in ws.rglob("*"))
    for command in (
        ["status"],
        ["history", "c1-0"],
        ["agreement"],
        ["annotators"],
        ["adjudicate", "--list"],
        ["models", "list"],
    ):
        assert main(["-w", str(ws), *command]) == 0, command
    assert sorted(p.name for p in ws.rglob("*")) == before
