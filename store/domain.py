"""Plain domain objects the repository hands out: no sessions, no lazy loading."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TechniqueView:
    key: str
    name: str
    definition: str
    examples: tuple[str, ...]
    hotkey: str | None
    target: int | None


@dataclass(frozen=True)
class CodebookView:
    key: str
    name: str
    version: str
    description: str
    multi_label: bool
    techniques: tuple[TechniqueView, ...]

    def keys(self) -> list[str]:
        return [t.key for t in self.techniques]

    def technique(self, key: str) -> TechniqueView:
        for t in self.techniques:
            if t.key == key:
                return t
        raise KeyError(key)


@dataclass(frozen=True)
class MessageView:
    id: int
    external_id: str
    conversation_id: int
    conversation_external_id: str
    position: int
    speaker: str
    text: str
    labelable: bool
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EventView:
    id: int
    message_id: int
    annotator: str
    kind: str
    labels: tuple[str, ...]
    target_event_id: int | None
    model_version_id: int | None
    accepted_suggestion: bool | None
    seconds: float | None
    note: str | None
    reason: str | None
    source: str
    created_at: str
    role: str | None = None
    """The annotator's role when the event was written (None: not recorded, before schema 4)."""


@dataclass(frozen=True)
class ImportReport:
    file: str
    rows: int
    messages_added: int
    messages_existing: int
    conversations_added: int
    labels_added: int
    rejected: int
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)
