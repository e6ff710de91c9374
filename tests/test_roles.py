"""Roles: the creator maintains the workspace, refusals say how roles are given, and each
event keeps the role its annotator had when it was written (schema 4, upgraded in place)."""

from __future__ import annotations

import getpass
import json
from pathlib import Path

import pytest
from sqlalchemy import text

import seeds
from store import Repository, StoreError, load_codebook_file
from store.io import ColumnMap, import_file
from tui.cli import main

TINY = "conversation,turn,speaker,text\nc1,0,therapist,How are you?\nc1,1,client,Fine.\n"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def small_workspace(tmp_path: Path, capsys: pytest.CaptureFixture[str], *init: str) -> list[str]:
    ws = ["-w", str(tmp_path / "w")]
    assert run(capsys, "init", str(tmp_path / "w"), *init)[0] == 0
    (tmp_path / "tiny.csv").write_text(TINY, encoding="utf-8")
    code, _, err = run(
        capsys, *ws, "import", str(tmp_path / "tiny.csv"),
        "--conversation", "conversation", "--order", "turn", "--speaker", "speaker",
    )  # fmt: skip
    assert code == 0, err
    return ws


def test_the_creator_is_the_maintainer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`techne init` makes the login name (or --maintainer) the maintainer and says so."""
    code, out, _ = run(capsys, "init", str(tmp_path / "a"))
    assert code == 0 and f"{getpass.getuser()} is its maintainer" in out
    assert "techne annotators add NAME --role lead" in out
    roles = json.loads(run(capsys, "-w", str(tmp_path / "a"), "annotators", "--json")[1])
    assert roles[getpass.getuser()]["role"] == "maintainer"
    assert run(capsys, "init", str(tmp_path / "b"), "--maintainer", "maria")[0] == 0
    roles = json.loads(run(capsys, "-w", str(tmp_path / "b"), "annotators", "--json")[1])
    assert {name: row["role"] for name, row in roles.items()} == {"maria": "maintainer"}


def test_refusals_say_how_roles_are_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An expert who tries to adjudicate is told who gives roles and the command to run."""
    ws = small_workspace(tmp_path, capsys, "--maintainer", "maria")
    assert run(capsys, *ws, "annotators", "add", "ben")[0] == 0
    code, _, err = run(capsys, *ws, "adjudicate", "--annotator", "ben")
    assert code == 1
    assert "ben is an expert: only leads and maintainers adjudicate" in err
    assert "A maintainer (maria) gives the role with `techne annotators add ben --role lead`" in err
    repo = Repository.open(f"sqlite:///{tmp_path / 'w' / 'techne.db'}")
    try:
        with pytest.raises(StoreError, match="techne annotators add ben --role lead"):
            repo.add_event(repo.message("c1:0").id, "ben", "adjudicate", ["open_question"])
    finally:
        repo.close()


def test_history_shows_the_role_held_when_the_event_was_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """ben labels as an expert, is made a lead, then corrects: history shows both roles."""
    ws = small_workspace(tmp_path, capsys, "--maintainer", "maria")
    repo = Repository.open(f"sqlite:///{tmp_path / 'w' / 'techne.db'}")
    try:
        mid = repo.message("c1:0").id
        repo.ensure_annotator("ben")
        repo.add_event(mid, "ben", "label", ["open_question"])
        repo.set_role("ben", "lead")
        repo.add_event(mid, "ben", "correct", ["simple_reflection"])
    finally:
        repo.close()
    code, out, _ = run(capsys, *ws, "history", "c1:0")
    assert code == 0
    lines = [line for line in out.splitlines() if line.startswith("#")]
    assert "ben (expert)  label  open_question" in lines[0]
    assert "ben (lead)  correct  simple_reflection" in lines[1]
    events = json.loads(run(capsys, *ws, "history", "c1:0", "--json")[1])["events"]
    assert [e["role"] for e in events] == ["expert", "lead"]


def test_imported_labels_carry_their_coders_role(store_url: str, tmp_path: Path) -> None:
    repo = Repository.open(store_url, create=True)
    try:
        repo.install_codebook(load_codebook_file(seeds.CODEBOOKS / "mi.toml"))
        repo.codebook_key = "mi"
        repo.set_role("senior", "lead")
        source = tmp_path / "labelled.csv"
        source.write_text("text,label\nHow are you?,open_question\n", encoding="utf-8")
        import_file(repo, source, ColumnMap(text="text", label="label", annotator="senior"))
        (event,) = repo.events(repo.message("1").id)
        assert event.role == "lead"
    finally:
        repo.close()


def test_a_schema_3_store_is_upgraded_in_place(store_url: str, tmp_path: Path) -> None:
    """A store written before roles were kept on events gets the column on opening; its old
    events read `None` (shown as "role not recorded"), new ones carry the role, and events
    stay append-only."""
    repo = Repository.open(store_url, create=True)
    repo.install_codebook(load_codebook_file(seeds.CODEBOOKS / "mi.toml"))
    repo.codebook_key = "mi"
    repo.set_role("old", "lead")
    source = tmp_path / "labelled.csv"
    source.write_text("text,label\nHow are you?,open_question\n", encoding="utf-8")
    import_file(repo, source, ColumnMap(text="text", label="label", annotator="old"))
    with repo.engine.begin() as conn:  # what a schema-3 store looks like
        conn.execute(text("ALTER TABLE annotation_events DROP COLUMN role"))
        conn.execute(text("UPDATE store_info SET value = '3' WHERE key = 'schema_version'"))
    repo.close()
    repo = Repository.open(store_url, codebook_key="mi")
    try:
        mid = repo.message("1").id
        repo.add_event(mid, "old", "correct", ["simple_reflection"])
        assert [e.role for e in repo.events(mid)] == [None, "lead"]
        assert repo.fingerprint()  # the store reads as usual
        with repo.engine.connect() as conn:
            version = conn.execute(
                text("SELECT value FROM store_info WHERE key = 'schema_version'")
            ).scalar()
            assert version == "4"
            with pytest.raises(Exception, match="append-only"):
                conn.execute(text("UPDATE annotation_events SET role = 'lead'"))
    finally:
        repo.close()
