"""All database tables: conversations, messages, codebooks, annotators, events, models, rounds."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

SCHEMA_VERSION = 4
"""2 added `claims` (team assignment); 3 added `embedding_blocks` and `prediction_sets`
(compact learning caches); 4 added `annotation_events.role` (the annotator's role when the
event was written). Opening an older store adds the missing tables and columns."""

EVENT_KINDS = ("label", "correct", "skip", "flag", "note", "undo", "adjudicate")
"""Kinds of annotation event. label/correct/adjudicate carry labels; undo names its target."""

ROLES = ("expert", "lead", "maintainer")


def utcnow() -> datetime:
    """Timezone-aware now, stored as UTC."""
    return datetime.now(UTC)


def _json() -> Any:
    return Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class StoreInfo(SQLModel, table=True):
    """Key/value facts about the store itself (schema version, creation time)."""

    __tablename__ = "store_info"
    key: str = Field(primary_key=True)
    value: str


class Conversation(SQLModel, table=True):
    __tablename__ = "conversations"
    id: int | None = Field(default=None, primary_key=True)
    external_id: str = Field(index=True, unique=True)
    meta: dict[str, Any] = _json()
    outcome: str | None = None
    """Optional categorical outcome (e.g. improved / unchanged)."""
    outcome_score: float | None = None
    """Optional numeric outcome (e.g. a symptom-scale change)."""
    source_file: str | None = None


class CounselingMessage(SQLModel, table=True):
    __tablename__ = "messages"
    # The unique (conversation, position) index also serves lookups by conversation.
    __table_args__ = (UniqueConstraint("conversation_id", "position", name="uq_message_position"),)
    id: int | None = Field(default=None, primary_key=True)
    external_id: str = Field(index=True, unique=True)
    conversation_id: int = Field(foreign_key="conversations.id")
    position: int
    speaker: str = ""
    text: str = Field(sa_column=Column(Text, nullable=False))
    labelable: bool = True
    meta: dict[str, Any] = _json()
    source_file: str | None = None
    source_line: int | None = None


class Codebook(SQLModel, table=True):
    __tablename__ = "codebooks"
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(index=True, unique=True)
    name: str
    version: str = "1"
    description: str = ""
    multi_label: bool = False


class Technique(SQLModel, table=True):
    __tablename__ = "techniques"
    __table_args__ = (UniqueConstraint("codebook_id", "key", name="uq_technique_key"),)
    id: int | None = Field(default=None, primary_key=True)
    codebook_id: int = Field(foreign_key="codebooks.id", index=True)
    key: str
    name: str
    definition: str = ""
    examples: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    hotkey: str | None = None
    position: int = 0
    target: int | None = None


class Annotator(SQLModel, table=True):
    __tablename__ = "annotators"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True)
    role: str = "expert"
    created_at: datetime = Field(default_factory=utcnow)


class ModelVersion(SQLModel, table=True):
    __tablename__ = "model_versions"
    id: int | None = Field(default=None, primary_key=True)
    tag: str = Field(index=True, unique=True)
    created_at: datetime = Field(default_factory=utcnow)
    backend: str
    encoder: str = ""
    codebook_key: str = ""
    path: str | None = None
    checksum: str | None = None
    settings: dict[str, Any] = _json()
    metrics: dict[str, Any] = _json()
    parent_id: int | None = Field(default=None, foreign_key="model_versions.id")
    active: bool = False


class AnnotationEvent(SQLModel, table=True):
    """One thing a person (or an import) did to a message. Rows are never updated or deleted."""

    __tablename__ = "annotation_events"
    __table_args__ = (Index("ix_events_message_id", "message_id", "id"),)
    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="messages.id")
    annotator_id: int = Field(foreign_key="annotators.id", index=True)
    kind: str
    labels: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    target_event_id: int | None = Field(default=None, foreign_key="annotation_events.id")
    """For undo: the event it takes back."""
    model_version_id: int | None = Field(default=None, foreign_key="model_versions.id")
    """The model whose suggestion was on screen when the event was made."""
    accepted_suggestion: bool | None = None
    seconds: float | None = None
    """Seconds the annotator spent on the message before this event."""
    note: str | None = None
    reason: str | None = None
    source: str = "tui"
    created_at: datetime = Field(default_factory=utcnow)
    role: str | None = None
    """The annotator's role when the event was written (None: written before schema 4)."""


class Prediction(SQLModel, table=True):
    """One message's prediction by a version: how stores before schema 3 kept them (rounds
    now write a PredictionSet instead); still read for those versions."""

    __tablename__ = "predictions"
    __table_args__ = (
        UniqueConstraint("model_version_id", "message_id", name="uq_prediction"),
        Index("ix_predictions_uncertainty", "model_version_id", "uncertainty"),
    )
    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="messages.id", index=True)
    model_version_id: int = Field(foreign_key="model_versions.id")
    probabilities: dict[str, float] = _json()
    top_label: str = ""
    uncertainty: float = 0.0


class Round(SQLModel, table=True):
    __tablename__ = "rounds"
    id: int | None = Field(default=None, primary_key=True)
    number: int = Field(index=True, unique=True)
    created_at: datetime = Field(default_factory=utcnow)
    strategy: str
    batch_size: int
    model_version_id: int | None = Field(default=None, foreign_key="model_versions.id")
    queried_message_ids: list[int] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    stats: dict[str, Any] = _json()


class Embedding(SQLModel, table=True):
    """Cached encoder output per message, so rounds never re-encode what they have seen."""

    __tablename__ = "embeddings"
    __table_args__ = (UniqueConstraint("encoder", "message_id", name="uq_embedding"),)
    id: int | None = Field(default=None, primary_key=True)
    encoder: str = Field(index=True)
    message_id: int = Field(foreign_key="messages.id")
    dim: int
    vector: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class Claim(SQLModel, table=True):
    """An annotator's hold on a message while they code it. Claims expire, so a crashed
    session releases its items; saving or skipping the message releases the claim."""

    __tablename__ = "claims"
    __table_args__ = (UniqueConstraint("message_id", "annotator_id", name="uq_claim"),)
    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="messages.id", index=True)
    annotator_id: int = Field(foreign_key="annotators.id")
    claimed_at: float
    """Epoch seconds (portable across SQLite and PostgreSQL, compared as numbers)."""
    expires_at: float = Field(index=True)


class EmbeddingBlock(SQLModel, table=True):
    """Cached encoder vectors of many messages in one row (store/vectors.py): message ids as
    little-endian int64 bytes, vectors as a float32 (count, dim) matrix. Replaces the
    one-row-per-message `embeddings` table, whose rows are moved here on first read."""

    __tablename__ = "embedding_blocks"
    id: int | None = Field(default=None, primary_key=True)
    encoder: str = Field(index=True)
    dim: int
    count: int
    message_ids: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    vectors: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class PredictionSet(SQLModel, table=True):
    """A model version's predictions for its whole pool in one row (store/predictions.py):
    message ids as little-endian int64 bytes, probabilities as a float32 (count, labels)
    matrix. What rounds write; the queue, the suggestion on screen and the stopping
    criterion read it through a per-repository cache. `predictions` (one row per message)
    is what stores written before schema 3 hold, and is still read for those versions."""

    __tablename__ = "prediction_sets"
    id: int | None = Field(default=None, primary_key=True)
    model_version_id: int = Field(foreign_key="model_versions.id", unique=True)
    labels: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    count: int
    message_ids: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    probabilities: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
