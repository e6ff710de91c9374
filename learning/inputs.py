"""What a model sees of a message: its text and the turns before it, speakers marked."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

CONTEXT_MODES = ("none", "previous", "window")
"""none: the message alone. previous: the turn before it as a second segment.
window: up to `context_turns` previous turns, speakers marked, as a second segment."""


@dataclass(frozen=True)
class Turn:
    speaker: str
    text: str


@dataclass(frozen=True)
class ModelInput:
    """One message to classify, with the conversation turns before it (oldest first)."""

    text: str
    speaker: str = ""
    context: tuple[Turn, ...] = ()


def context_segment(item: ModelInput, mode: str, turns: int) -> str | None:
    """The second segment fed beside the message text, or None for text-only models.

    The message is always the first segment so that truncation cuts context, never the
    message; the nearest turn comes first in the segment for the same reason.
    """
    if mode == "none" or not item.context or turns <= 0:
        return None
    if mode == "previous":
        return item.context[-1].text
    if mode == "window":
        recent = item.context[-turns:]
        return " | ".join(f"{t.speaker or 'speaker'}: {t.text}" for t in reversed(recent))
    raise ValueError(f"context mode must be one of {CONTEXT_MODES}, got {mode!r}")


def with_context(
    texts: Sequence[str], speakers: Sequence[str], conversation_ids: Sequence[object], turns: int
) -> list[ModelInput]:
    """Build inputs from a conversation-ordered table (each row sees the rows before it)."""
    out: list[ModelInput] = []
    history: list[Turn] = []
    current: object = object()
    for text, speaker, conv in zip(texts, speakers, conversation_ids, strict=True):
        if conv != current:
            current, history = conv, []
        out.append(ModelInput(text, speaker, tuple(history[-turns:]) if turns > 0 else ()))
        history.append(Turn(speaker, text))
    return out
