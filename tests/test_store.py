"""The store: append-only events, derived labels, gold resolution, codebooks, workspaces."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

import seeds
from store import (
    CodebookError,
    Repository,
    StoreError,
    WorkspaceError,
    find_root,
    load_codebook_file,
    load_workspace,
    parse_codebook,
)
from store.io import ColumnMap, import_file
from store.labels import EventRow, derive, resolve
from store.workspace import write_config


def _small_store(repo: Repository, tmp_path: Path) -> list[int]:
    data = tmp_path / "small.jsonl"
    data.write_text(
        "\n".join(
            f'{{"conv": "c1", "turn": {i}, "who": "{"therapist" if i % 2 == 0 else "client"}", '
            f'"text": "message {i}"}}'
            for i in range(6)
        )
        + "\n"
    )
    import_file(
        repo,
        data,
        ColumnMap(
            text="text",
            speaker="who",
            conversation="conv",
            order="turn",
            labelable_speakers=("therapist",),
        ),
    )
    return [m.id for m in repo.iter_messages(labelable_only=True)]


def test_events_cannot_be_updated_or_deleted(annomi_repo: Repository, tmp_path: Path) -> None:
    """The database itself refuses to change or remove an annotation event."""
    mid = _small_store(annomi_repo, tmp_path)[0]
    annomi_repo.ensure_annotator("ana")
    annomi_repo.add_event(mid, "ana", "label", ["question"])
    for statement in (
        "UPDATE annotation_events SET kind = 'skip'",
        "DELETE FROM annotation_events",
    ):
        with pytest.raises(Exception, match="append-only"), annomi_repo.engine.begin() as conn:
            conn.execute(text(statement))
    assert [e.kind for e in annomi_repo.events(mid)] == ["label"]


def test_current_label_is_derived_from_events(annomi_repo: Repository, tmp_path: Path) -> None:
    """label, correct, undo, skip and undo-of-undo add up to the right current label."""
    mid = _small_store(annomi_repo, tmp_path)[0]
    annomi_repo.ensure_annotator("ana")
    first = annomi_repo.add_event(mid, "ana", "label", ["question"])
    fix = annomi_repo.add_event(mid, "ana", "correct", ["reflection"])
    assert annomi_repo.gold()[mid].labels == ("reflection",)
    undo = annomi_repo.add_event(mid, "ana", "undo", target_event_id=fix)
    assert annomi_repo.gold()[mid].labels == ("question",)
    annomi_repo.add_event(mid, "ana", "undo", target_event_id=undo)
    assert annomi_repo.gold()[mid].labels == ("reflection",)
    annomi_repo.add_event(mid, "ana", "skip")
    assert mid not in annomi_repo.gold()
    events = annomi_repo.events(mid)
    assert [e.kind for e in events] == ["label", "correct", "undo", "undo", "skip"]
    assert events[0].id == first and events[0].labels == ("question",)


def test_event_validation(annomi_repo: Repository, tmp_path: Path) -> None:
    """Unknown techniques, two labels in a single-label book, foreign undos are refused."""
    mid, other = _small_store(annomi_repo, tmp_path)[:2]
    annomi_repo.ensure_annotator("ana")
    annomi_repo.ensure_annotator("bo")
    with pytest.raises(StoreError, match="unknown technique 'advice'"):
        annomi_repo.add_event(mid, "ana", "label", ["advice"])
    with pytest.raises(StoreError, match="one label per message"):
        annomi_repo.add_event(mid, "ana", "label", ["question", "other"])
    eid = annomi_repo.add_event(mid, "ana", "label", ["question"])
    with pytest.raises(StoreError, match="own events"):
        annomi_repo.add_event(mid, "bo", "undo", target_event_id=eid)
    with pytest.raises(StoreError, match="same message"):
        annomi_repo.add_event(other, "ana", "undo", target_event_id=eid)
    with pytest.raises(StoreError, match="only leads and maintainers adjudicate"):
        annomi_repo.add_event(mid, "ana", "adjudicate", ["other"])
    with pytest.raises(StoreError, match="unknown annotator"):
        annomi_repo.add_event(mid, "nobody", "label", ["other"])


def test_gold_resolution_order() -> None:
    """adjudicated beats majority beats single; a tie has no majority."""
    ev = [
        EventRow(1, 7, "a", "label", ("question",)),
        EventRow(2, 7, "b", "label", ("reflection",)),
    ]
    tie = derive(7, ev)
    assert resolve(tie) is None
    majority = derive(7, [*ev, EventRow(3, 7, "c", "label", ("question",))])
    gold = resolve(majority)
    assert gold is not None
    assert (gold.labels, gold.source, gold.agreement) == (("question",), "majority", 2 / 3)
    assert resolve(majority, "adjudicated") is None
    judged = derive(7, [*ev, EventRow(4, 7, "lead", "adjudicate", ("other",))])
    gold = resolve(judged, "adjudicated")
    assert gold is not None and (gold.labels, gold.source) == (("other",), "adjudicated")
    single = resolve(derive(7, ev[:1]), "single")
    assert single is not None and single.source == "single" and single.agreement is None
    assert resolve(derive(7, ev[:1]), "majority") is None


def test_flags_and_notes_do_not_label(annomi_repo: Repository, tmp_path: Path) -> None:
    """A flag is counted in status but gives no label."""
    mid = _small_store(annomi_repo, tmp_path)[0]
    annomi_repo.ensure_annotator("ana")
    annomi_repo.add_event(mid, "ana", "flag", reason="needs a lead's eye")
    annomi_repo.add_event(mid, "ana", "note", note="ambiguous")
    status = annomi_repo.status()
    assert status["flagged"] == 1 and status["labelled"] == 0 and status["events"] == 2


def test_bundled_codebooks_are_valid() -> None:
    """Every bundled codebook loads, with definitions, 2-3 examples and unique hotkeys."""
    assert seeds.builtin_codebooks() == ["annomi", "mi", "supportive"]
    for name in seeds.builtin_codebooks():
        book = load_codebook_file(seeds.CODEBOOKS / f"{name}.toml")
        assert book.key == name
        hotkeys = [t.hotkey for t in book.techniques]
        assert len(set(hotkeys)) == len(hotkeys) and None not in hotkeys
        for t in book.techniques:
            assert t.definition and 2 <= len(t.examples) <= 3
    mi = load_codebook_file(seeds.CODEBOOKS / "mi.toml")
    assert len(mi.techniques) == 12 and "complex_reflection" in mi.technique_keys()


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({}, "missing \\[codebook\\] table"),
        ({"codebook": {"key": "x"}}, "at least one \\[\\[techniques\\]\\]"),
        ({"codebook": {"key": "x"}, "techniques": [{"key": "a", "hotkey": "s"}]}, "app command"),
        (
            {"codebook": {"key": "x"}, "techniques": [{"key": "a"}, {"key": "a"}]},
            "technique 'a': duplicate key",
        ),
        (
            {"codebook": {"key": "x", "multi_label": "yes"}, "techniques": [{"key": "a"}]},
            "'multi_label' must be bool",
        ),
    ],
)
def test_codebook_errors_name_file_and_field(doc: dict, message: str) -> None:
    """A broken codebook says which file and which field."""
    with pytest.raises(CodebookError, match=message) as info:
        parse_codebook(doc, "book.toml")
    assert "book.toml" in str(info.value)


def test_codebook_update_never_drops_techniques(annomi_repo: Repository) -> None:
    """Re-installing a codebook may add techniques but not remove them."""
    base = load_codebook_file(seeds.CODEBOOKS / "annomi.toml")
    smaller = parse_codebook(
        {"codebook": {"key": "annomi"}, "techniques": [{"key": "reflection"}]}, "small.toml"
    )
    with pytest.raises(StoreError, match="never removed"):
        annomi_repo.install_codebook(smaller)
    assert annomi_repo.codebook().keys() == base.technique_keys()


def test_workspace_discovery(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--workspace, then $TECHNE_WORKSPACE, then the current folder and its parents."""
    ws = tmp_path / "ws"
    ws.mkdir()
    write_config(ws, name="ws", codebook="mi", db_url=None)
    deep = ws / "a" / "b"
    deep.mkdir(parents=True)
    assert find_root(cwd=deep) == ws.resolve()
    with pytest.raises(WorkspaceError, match="no Techne workspace"):
        find_root(cwd=tmp_path)
    monkeypatch.setenv("TECHNE_WORKSPACE", str(ws))
    assert find_root(cwd=tmp_path) == ws.resolve()
    monkeypatch.setenv("TECHNE_WORKSPACE", str(tmp_path))
    with pytest.raises(WorkspaceError, match="TECHNE_WORKSPACE"):
        find_root(cwd=deep)
    with pytest.raises(WorkspaceError, match="not a Techne workspace"):
        find_root(tmp_path / "nope")


def test_database_url_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--db beats $TECHNE_DB_URL beats techne.toml beats techne.db."""
    write_config(tmp_path, name="w", codebook="mi", db_url="postgresql://from-toml/db")
    assert load_workspace(tmp_path).db_url == "postgresql://from-toml/db"
    monkeypatch.setenv("TECHNE_DB_URL", "postgresql://from-env/db")
    assert load_workspace(tmp_path).db_url == "postgresql://from-env/db"
    assert load_workspace(tmp_path, "sqlite:///x.db").db_url == "sqlite:///x.db"
    other = tmp_path / "plain"
    other.mkdir()
    write_config(other, name="p", codebook="mi", db_url=None)
    monkeypatch.delenv("TECHNE_DB_URL")
    assert load_workspace(other).db_url.endswith("plain/techne.db")


def test_sqlite_store_uses_wal_and_foreign_keys(tmp_path: Path) -> None:
    """The embedded store runs in WAL mode with foreign keys on and a busy timeout."""
    repo = Repository.open(f"sqlite:///{tmp_path / 't.db'}", create=True)
    with repo.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() >= 5000
    repo.close()


def test_opening_a_missing_store_says_run_init(tmp_path: Path) -> None:
    """An empty database is not silently given a schema."""
    with pytest.raises(StoreError, match="techne init"):
        Repository.open(f"sqlite:///{tmp_path / 'empty.db'}")
