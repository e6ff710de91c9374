"""One import's plan: which columns hold what, the rows read, and the state while it streams."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from store.io.labelmap import LabelNames
from store.io.readers import RowSource


@dataclass(frozen=True)
class ColumnMap:
    """Which input columns hold what. Unmapped columns are kept as message metadata."""

    text: str = "text"
    speaker: str | None = None
    conversation: str | None = None
    order: str | None = None
    id: str | None = None
    label: str | None = None
    annotator: str | None = None
    annotator_column: str | None = None
    """Column naming each row's coder: rows repeating a message are its other coders' labels."""
    labelable_speakers: tuple[str, ...] = ()
    conversation_fields: tuple[str, ...] = ()
    label_separator: str = ";"
    id_prefix: str = ""
    label_map: Path | None = None
    """CSV or TOML file: file label -> technique key (store/io/labelmap.py)."""

    def mapped(self) -> set[str]:
        cols = {
            self.text,
            self.speaker,
            self.conversation,
            self.order,
            self.id,
            self.label,
            self.annotator_column,
        }
        return {c for c in cols if c} | set(self.conversation_fields)

    def required(self) -> list[str]:
        cols = [
            self.text,
            self.speaker,
            self.conversation,
            self.order,
            self.id,
            self.label,
            self.annotator_column,
        ]
        return [c for c in cols if c] + list(self.conversation_fields)


@dataclass(slots=True)
class Record:
    line: int
    conversation: str
    external_id: str
    position: int | None
    speaker: str
    text: str
    labelable: bool
    labels: tuple[str, ...]
    meta: dict[str, Any]
    conversation_meta: dict[str, Any]
    coder: str | None = None
    """The row's coder (from --annotator-column)."""
    repeat: bool = False
    """Another coder's row for a message seen earlier in the file: only its label is new."""


@dataclass
class Reject:
    line: int
    column: str | None
    problem: str
    row: dict[str, Any]


@dataclass
class Plan:
    """State of one import while it streams."""

    source: RowSource
    columns: ColumnMap
    technique_keys: frozenset[str]
    multi_label: bool
    max_text_chars: int
    annotator_id: int | None
    store_was_empty: bool
    conversation_ids: dict[str, int] = field(default_factory=dict)
    conversation_meta: dict[str, dict[str, Any]] = field(default_factory=dict)
    next_position: dict[str, int] = field(default_factory=dict)
    seen_ids: dict[str, int] = field(default_factory=dict)
    """External id -> line, for every row accepted so far."""
    seen_positions: dict[tuple[str, int], int] = field(default_factory=dict)
    """(conversation, position) -> line; only needed when ids come from their own column."""
    coder_ids: dict[str, int] = field(default_factory=dict)
    """Coder name -> annotator id, created inside the import's transaction."""
    coded: dict[tuple[str, str], int] = field(default_factory=dict)
    """(external id, coder) -> line, with --annotator-column."""
    first_text: dict[str, int] = field(default_factory=dict)
    """External id -> hash of its text, to check that repeated rows are the same message."""
    rejects: list[Reject] = field(default_factory=list)
    label_names: LabelNames | None = None
    """Label map and technique names (store/io/labelmap.py); None: keys only."""
    added: int = 0
    existing: int = 0
    conversations_added: int = 0
    labels_added: int = 0
    rows: int = 0
    mapped: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        self.mapped = frozenset(self.columns.mapped())
