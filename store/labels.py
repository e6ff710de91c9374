"""Derive current labels from the append-only event log, and resolve gold labels."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

LABELLING_KINDS = frozenset({"label", "correct"})
GOLD_LEVELS = ("adjudicated", "majority", "single")
"""Gold sources, strongest first. A policy names the weakest source it accepts."""


@dataclass(frozen=True)
class EventRow:
    """The fields of an event that label derivation needs."""

    id: int
    message_id: int
    annotator: str
    kind: str
    labels: tuple[str, ...] = ()
    target_event_id: int | None = None
    model_version_id: int | None = None


@dataclass
class MessageState:
    """What the events of one message add up to."""

    message_id: int
    coder_labels: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Each annotator's current labels (skips and undone events removed)."""
    skipped_by: set[str] = field(default_factory=set)
    flags: list[EventRow] = field(default_factory=list)
    adjudicated: tuple[str, ...] | None = None
    adjudicator: str | None = None
    event_count: int = 0
    suggested_by: int | None = None
    """Model version whose suggestion was on screen at the latest labelling event."""
    coder_model: dict[str, int] = field(default_factory=dict)
    """Per coder, the model version whose suggestion was on screen at their labelling."""


@dataclass(frozen=True)
class Gold:
    """A resolved gold label with where it came from."""

    labels: tuple[str, ...]
    source: str
    annotators: tuple[str, ...]
    agreement: float | None
    """Share of coders whose labels equal the gold labels; None with a single coder."""
    adjudicator: str | None = None


def derive(message_id: int, events: Iterable[EventRow]) -> MessageState:
    """Fold a message's events (in id order) into its current state."""
    ordered = sorted(events, key=lambda e: e.id)
    undone: set[int] = set()
    for event in reversed(ordered):
        # An undo that was itself undone does not count; walk from the newest.
        if event.kind == "undo" and event.id not in undone and event.target_event_id is not None:
            undone.add(event.target_event_id)
    state = MessageState(message_id=message_id, event_count=len(ordered))
    for event in ordered:
        if event.id in undone or event.kind == "undo":
            continue
        if event.kind in LABELLING_KINDS:
            state.coder_labels[event.annotator] = tuple(event.labels)
            state.skipped_by.discard(event.annotator)
            state.suggested_by = event.model_version_id
            if event.model_version_id is not None:
                state.coder_model[event.annotator] = event.model_version_id
            else:
                state.coder_model.pop(event.annotator, None)
        elif event.kind == "skip":
            state.coder_labels.pop(event.annotator, None)
            state.coder_model.pop(event.annotator, None)
            state.skipped_by.add(event.annotator)
        elif event.kind == "flag":
            state.flags.append(event)
        elif event.kind == "adjudicate":
            state.adjudicated = tuple(event.labels)
            state.adjudicator = event.annotator
    return state


def resolve(state: MessageState, weakest: str = "single") -> Gold | None:
    """Gold labels of a message: adjudicated > majority > single annotator, or None.

    `weakest` is the weakest source accepted ("single" accepts all three). A tie between
    coders has no majority and waits for adjudication.
    """
    if weakest not in GOLD_LEVELS:
        raise ValueError(f"gold level must be one of {GOLD_LEVELS}, got {weakest!r}")
    allowed = GOLD_LEVELS[: GOLD_LEVELS.index(weakest) + 1]
    coders = tuple(sorted(state.coder_labels))
    agreement = _agreement(state, None)
    if state.adjudicated is not None:
        return Gold(
            state.adjudicated,
            "adjudicated",
            coders,
            _agreement(state, state.adjudicated),
            state.adjudicator,
        )
    if not coders:
        return None
    if len(coders) == 1:
        if "single" not in allowed:
            return None
        return Gold(state.coder_labels[coders[0]], "single", coders, agreement)
    if "majority" not in allowed:
        return None
    counts = Counter(tuple(sorted(v)) for v in state.coder_labels.values()).most_common()
    if len(counts) > 1 and counts[0][1] == counts[1][1]:
        return None
    return Gold(counts[0][0], "majority", coders, _agreement(state, counts[0][0]))


def _agreement(state: MessageState, gold: tuple[str, ...] | None) -> float | None:
    if len(state.coder_labels) < 2 or gold is None:
        return None
    target = tuple(sorted(gold))
    same = sum(1 for v in state.coder_labels.values() if tuple(sorted(v)) == target)
    return same / len(state.coder_labels)
