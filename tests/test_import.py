"""Importing CSV, JSONL and Parquet: mapping, metadata, idempotency, AnnoMI's exact counts."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from store import Repository, parse_codebook
from store.io import ColumnMap, import_file

ROWS = [
    {"session": "s1", "n": 0, "role": "Therapist", "utterance": "What brings you in?", "code": "question", "topic": "alcohol", "ts": "00:01"},
    {"session": "s1", "n": 1, "role": "client", "utterance": "My wife [worried] about me.", "code": "n/a", "topic": "alcohol", "ts": "00:05"},
    {"session": "s1", "n": 2, "role": "therapist", "utterance": "She's worried.", "code": "reflection", "topic": "alcohol", "ts": "00:09"},
    {"session": "s2", "n": 0, "role": "therapist", "utterance": "Welcome back.", "code": "", "topic": "grief", "ts": "00:00"},
    {"session": "s2", "n": 1, "role": "client", "utterance": "Thanks.\nIt's been hard.", "code": "n/a", "topic": "grief", "ts": "00:02"},
]  # fmt: skip
COLUMNS = ColumnMap(
    text="utterance",
    speaker="role",
    conversation="session",
    order="n",
    label="code",
    annotator="coder1",
    labelable_speakers=("therapist",),
    conversation_fields=("topic",),
)


def write_rows(path: Path, rows: list[dict]) -> Path:
    """Write rows as CSV, JSONL or Parquet by the path's suffix."""
    if path.suffix == ".csv":
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    elif path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    else:
        pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def snapshot(repo: Repository) -> list[tuple]:
    """Everything a message is, as plain tuples, plus its gold label."""
    gold = repo.gold()
    return [
        (
            m.external_id,
            m.conversation_external_id,
            m.position,
            m.speaker,
            m.text,
            m.labelable,
            gold[m.id].labels if m.id in gold else None,
            m.meta.get("ts"),
        )
        for m in repo.iter_messages()
    ]


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_each_format_imports_the_same_store(
    annomi_repo: Repository, tmp_path: Path, suffix: str
) -> None:
    """CSV, JSONL and Parquet with the same rows give the same messages, labels and metadata."""
    report = import_file(annomi_repo, write_rows(tmp_path / f"in{suffix}", ROWS), COLUMNS)
    assert (
        report.rows,
        report.messages_added,
        report.conversations_added,
        report.labels_added,
    ) == (5, 5, 2, 2)
    assert snapshot(annomi_repo) == [
        ("s1:0", "s1", 0, "therapist", "What brings you in?", True, ("question",), "00:01"),
        ("s1:1", "s1", 1, "client", "My wife [worried] about me.", False, None, "00:05"),
        ("s1:2", "s1", 2, "therapist", "She's worried.", True, ("reflection",), "00:09"),
        ("s2:0", "s2", 0, "therapist", "Welcome back.", True, None, "00:00"),
        ("s2:1", "s2", 1, "client", "Thanks.\nIt's been hard.", False, None, "00:02"),
    ]
    conversations = {ext: meta for _, ext, meta in annomi_repo.iter_conversations()}
    assert conversations == {"s1": {"topic": "alcohol"}, "s2": {"topic": "grief"}}
    message = annomi_repo.message("s1:0")
    assert "topic" not in message.meta and "code" not in message.meta


def test_reimport_adds_nothing(annomi_repo: Repository, tmp_path: Path) -> None:
    """The same file twice: second import finds every message and label already there."""
    path = write_rows(tmp_path / "in.csv", ROWS)
    import_file(annomi_repo, path, COLUMNS)
    before = annomi_repo.fingerprint()
    again = import_file(annomi_repo, path, COLUMNS)
    assert (again.messages_added, again.messages_existing, again.labels_added) == (0, 5, 0)
    assert annomi_repo.fingerprint() == before


def test_changed_label_on_reimport_is_a_new_event(annomi_repo: Repository, tmp_path: Path) -> None:
    """A label that changed in the source is appended as an event; history keeps both."""
    import_file(annomi_repo, write_rows(tmp_path / "a.jsonl", ROWS), COLUMNS)
    changed = [dict(r, code="other") if r["utterance"] == "She's worried." else r for r in ROWS]
    report = import_file(annomi_repo, write_rows(tmp_path / "b.jsonl", changed), COLUMNS)
    assert report.labels_added == 1
    mid = annomi_repo.message("s1:2").id
    assert annomi_repo.gold()[mid].labels == ("other",)
    assert [e.labels for e in annomi_repo.events(mid)] == [("reflection",), ("other",)]


def test_defaults_without_order_or_conversation(annomi_repo: Repository, tmp_path: Path) -> None:
    """Without --order, file order within a conversation; without --conversation, one per row."""
    path = write_rows(tmp_path / "flat.jsonl", [{"text": "one"}, {"text": "two"}])
    import_file(annomi_repo, path, ColumnMap())
    ids = [
        (m.external_id, m.conversation_external_id, m.position) for m in annomi_repo.iter_messages()
    ]
    assert ids == [("flat:1", "flat:1", 0), ("flat:2", "flat:2", 0)]
    path = write_rows(tmp_path / "conv.jsonl", [{"c": "x", "text": "a"}, {"c": "x", "text": "b"}])
    import_file(annomi_repo, path, ColumnMap(conversation="c", id_prefix="p/"))
    msgs = [m for m in annomi_repo.iter_messages() if m.conversation_external_id == "p/x"]
    assert [(m.external_id, m.position, m.text) for m in msgs] == [
        ("p/x:#0", 0, "a"),
        ("p/x:#1", 1, "b"),
    ]


def test_multi_label_codebook_takes_lists_and_separators(
    annomi_repo: Repository, tmp_path: Path
) -> None:
    """A multi-label codebook accepts 'a;b' cells in CSV and lists in JSONL."""
    book = parse_codebook(
        {
            "codebook": {"key": "multi", "multi_label": True},
            "techniques": [{"key": "question"}, {"key": "reflection"}, {"key": "advice"}],
        },
        "multi.toml",
    )
    annomi_repo.install_codebook(book)
    annomi_repo.codebook_key = "multi"
    rows = [
        {"text": "So you're torn - what now?", "labels": ["reflection", "question"]},
        {"text": "Try patches.", "labels": "advice"},
    ]
    import_file(
        annomi_repo,
        write_rows(tmp_path / "m.jsonl", rows),
        ColumnMap(label="labels", annotator="x"),
    )
    csv_rows = [{"text": "Tell me more.", "labels": "question; reflection"}]
    import_file(
        annomi_repo,
        write_rows(tmp_path / "m2.csv", csv_rows),
        ColumnMap(label="labels", annotator="x"),
    )
    gold = {annomi_repo.message(mid).text: g.labels for mid, g in annomi_repo.gold().items()}
    assert gold == {
        "So you're torn - what now?": ("reflection", "question"),
        "Try patches.": ("advice",),
        "Tell me more.": ("question", "reflection"),
    }


def test_annomi_simple_imports_with_exact_counts(annomi_repo: Repository, annomi_csv: Path) -> None:
    """AnnoMI-simple: 9,699 messages, 133 conversations, 4,882 labelled therapist messages."""
    columns = ColumnMap(
        text="utterance_text",
        speaker="interlocutor",
        conversation="transcript_id",
        order="utterance_id",
        label="main_therapist_behaviour",
        annotator="annomi",
        labelable_speakers=("therapist",),
        conversation_fields=("mi_quality", "topic"),
    )
    report = import_file(annomi_repo, annomi_csv, columns)
    assert report.messages_added == 9699
    status = annomi_repo.status()
    assert (status["messages"], status["conversations"], status["labelable_messages"]) == (
        9699,
        133,
        4882,
    )
    assert status["labelled"] == 4882
    assert status["labelled_per_technique"] == {
        "reflection": 1296,
        "question": 1386,
        "therapist_input": 614,
        "other": 1586,
    }
    quality = {meta["mi_quality"] for _, _, meta in annomi_repo.iter_conversations()}
    assert quality == {"high", "low"}
    assert import_file(annomi_repo, annomi_csv, columns).messages_added == 0
