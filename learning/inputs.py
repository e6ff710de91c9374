"""What a model sees of a message: its text and the turns around it, speakers marked."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

CONTEXT_MODES = ("none", "previous", "window", "around")
"""none: the message alone. previous: the turn before it as a second segment.
window: up to `context_turns` previous turns, speakers marked, as a second segment.
around: up to `context_turns` turns before and after it, speakers marked, as a second
segment (coding is done on whole transcripts, so the reply to a message is known)."""


@dataclass(frozen=True)
class Turn:
    speaker: str
    text: str


@dataclass(frozen=True)
class ModelInput:
    """One message to classify, with the conversation turns before it (oldest first) and
    after it (nearest first)."""

    text: str
    speaker: str = ""
    context: tuple[Turn, ...] = ()
    following: tuple[Turn, ...] = ()


def following_turns(mode: str, turns: int) -> int:
    """How many turns after a message a context mode reads (0 for all but around)."""
    return turns if mode == "around" else 0


def check_context(mode: str, turns: int) -> None:
    """Raise ValueError unless `mode` is a known context mode and `turns` fits it."""
    if mode not in CONTEXT_MODES:
        raise ValueError(f"context mode must be one of {', '.join(CONTEXT_MODES)}, got {mode!r}")
    if mode != "none" and turns < 1:
        raise ValueError(f"context_turns must be at least 1 with context {mode!r}, got {turns}")


def _marked(turns: Sequence[Turn]) -> str:
    return " | ".join(f"{t.speaker or 'speaker'}: {t.text}" for t in turns)


def context_segment(item: ModelInput, mode: str, turns: int) -> str | None:
    """The second segment fed beside the message text, or None for text-only models
    (and for `around`, whose two sides are given by `context_sides`).

    The message is always the first segment so that truncation cuts context, never the
    message; the nearest turn comes first in the segment for the same reason.
    """
    if mode not in CONTEXT_MODES:
        check_context(mode, turns)
    if mode in ("none", "around") or not item.context or turns <= 0:
        return None
    if mode == "previous":
        return item.context[-1].text
    return _marked(list(reversed(item.context[-turns:])))


def context_sides(item: ModelInput, mode: str, turns: int) -> tuple[str, str] | None:
    """`around`: (turns before, oldest first; turns after, nearest first), speakers marked;
    empty strings where the conversation starts or ends. None for the other modes."""
    if mode != "around" or turns <= 0:
        return None
    return _marked(item.context[-turns:]), _marked(item.following[:turns])


def with_context(
    texts: Sequence[str],
    speakers: Sequence[str],
    conversation_ids: Sequence[object],
    turns: int,
    after: int = 0,
) -> list[ModelInput]:
    """Build inputs from a conversation-ordered table: each row sees up to `turns` rows
    before it and up to `after` rows after it in its conversation."""
    out: list[ModelInput] = []
    history: list[Turn] = []
    current: object = object()
    for i, (text, speaker, conv) in enumerate(zip(texts, speakers, conversation_ids, strict=True)):
        if conv != current:
            current, history = conv, []
        following: tuple[Turn, ...] = ()
        if after > 0:
            end = i + 1
            while end < len(texts) and end <= i + after and conversation_ids[end] == conv:
                end += 1
            following = tuple(Turn(speakers[j], texts[j]) for j in range(i + 1, end))
        out.append(
            ModelInput(text, speaker, tuple(history[-turns:]) if turns > 0 else (), following)
        )
        history.append(Turn(speaker, text))
    return out
