"""Exports carry each message's conversation fields (AnnoMI's mi_quality, topic) in every format."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from store import Repository
from store.io import ColumnMap, ExportOptions, export, import_file

ROWS = [  # conversation, turn, speaker, text, label, mi_quality, topic, sessions
    ("a", 0, "therapist", "What brings you in?", "question", "high", "alcohol", "3"),
    ("a", 1, "client", "My drinking.", "", "high", "alcohol", "3"),
    ("a", 2, "therapist", "=You are worried.", "reflection", "high", "alcohol", "3"),
    ("b", 0, "therapist", "Welcome back.", "other", "low", "smoking, vaping", "12"),
]
COLUMNS = ColumnMap(
    text="text",
    speaker="speaker",
    conversation="conversation",
    order="turn",
    label="label",
    annotator="coder",
    labelable_speakers=("therapist",),
    conversation_fields=("mi_quality", "topic", "sessions"),
)
EXPECTED = [
    {"mi_quality": "high", "sessions": "3", "topic": "alcohol"},
    {"mi_quality": "high", "sessions": "3", "topic": "alcohol"},
    {"mi_quality": "low", "sessions": "12", "topic": "smoking, vaping"},
]


@pytest.fixture
def store(annomi_repo: Repository, tmp_path: Path) -> Repository:
    source = tmp_path / "talks.csv"
    with source.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            ["conversation", "turn", "speaker", "text", "label", "mi_quality", "topic", "sessions"]
        )
        writer.writerows(ROWS)
    import_file(annomi_repo, source, COLUMNS)
    return annomi_repo


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet", "hf"])
def test_every_format_carries_the_conversation_fields(
    store: Repository, tmp_path: Path, fmt: str
) -> None:
    out = tmp_path / ("gold" if fmt == "hf" else f"gold.{fmt}")
    export(store, out, ExportOptions(fmt=fmt, split=(0.5, 0.0, 0.5) if fmt == "hf" else None))
    if fmt == "jsonl":
        rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
        got = [r["conversation_fields"] for r in rows]
    elif fmt == "csv":
        with out.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        assert [c for c in rows[0] if c.startswith("conversation.")] == [
            "conversation.mi_quality",
            "conversation.sessions",
            "conversation.topic",
        ]
        got = [{k.split(".", 1)[1]: v for k, v in r.items() if k.startswith("conversation.")}
               for r in rows]  # fmt: skip
    elif fmt == "parquet":
        rows = pq.read_table(out).to_pylist()
        got = [r["conversation_fields"] for r in rows]
    else:
        from datasets import load_from_disk

        parts = load_from_disk(str(out))
        rows = sorted((r for name in parts for r in parts[name]), key=lambda r: r["message_id"])
        got = [r["conversation_fields"] for r in rows]
    assert got == EXPECTED


def test_a_store_without_conversation_fields_still_exports_everywhere(
    annomi_repo: Repository, tmp_path: Path
) -> None:
    source = tmp_path / "plain.csv"
    source.write_text("text,label\nHow are you?,question\n", encoding="utf-8")
    import_file(annomi_repo, source, ColumnMap(text="text", label="label", annotator="coder"))
    export(annomi_repo, tmp_path / "g.parquet", ExportOptions(fmt="parquet"))
    export(annomi_repo, tmp_path / "g.jsonl", ExportOptions(fmt="jsonl"))
    row = json.loads((tmp_path / "g.jsonl").read_text(encoding="utf-8"))
    assert row["conversation_fields"] == {}
    assert "conversation_fields" not in pq.read_table(tmp_path / "g.parquet").column_names
