"""One save from the annotate screen in one transaction: the event, the claims it releases
and takes, and everything the screen draws for the message that comes next."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from store import models as m
from store.domain import EventView, MessageView
from store.errors import StoreError
from store.events import events_in
from store.labels import EventRow, derive
from store.messages import message_view
from store.queue import Suggestion
from store.team import TeamPolicy, claim_first, release, serialised

SAVED_KINDS = ("label", "skip")
"""What a save writes: a label (a correction when the annotator already had one) or a skip."""


@dataclass(frozen=True)
class MessageDisplay:
    """Everything the annotate screen draws for one message, read in one go."""

    message: MessageView
    context: tuple[MessageView, ...]
    """The turns around it (the message itself included), in order."""
    events: tuple[EventView, ...]
    mine: tuple[str, ...] | None
    """The annotator's current labels on it (None: none)."""
    suggestion: Suggestion | None


@dataclass(frozen=True)
class Saved:
    """What one save did."""

    event_id: int
    kind: str
    """"label", "correct" or "skip"."""
    previous: tuple[str, ...] | None
    """The annotator's labels on the message before this save (None: none)."""
    next: MessageDisplay | None
    """The message to show next (None: none of the candidates could be claimed)."""


def save_and_show(
    engine: Engine,
    policy: TeamPolicy,
    suggest: Callable[[int], Suggestion | None],
    *,
    message_id: int,
    annotator: str,
    kind: str,
    labels: Sequence[str] = (),
    model_version_id: int | None = None,
    accepted_suggestion: bool | None = None,
    seconds: float | None = None,
    following: int | None = None,
    candidates: Sequence[int] = (),
    before: int = 0,
    after: int = 0,
) -> Saved:
    """Write a label or skip event, release the message's claim, and either show
    `following` (a message already in the session's history) or claim the first of
    `candidates`: one serialised transaction, all of it or nothing. `suggest` reads the
    model's suggestion for the next message (predictions do not change with a save)."""
    if kind not in SAVED_KINDS:
        raise StoreError(f"a save is one of {', '.join(SAVED_KINDS)}, got {kind!r}")
    with serialised(engine) as conn, Session(bind=conn) as s:
        who = s.exec(select(m.Annotator).where(m.Annotator.name == annotator)).first()
        if who is None or who.id is None:
            raise StoreError(f"unknown annotator {annotator!r}")
        if s.get(m.CounselingMessage, message_id) is None:
            raise StoreError(f"no message with id {message_id}")
        previous = _labels_of(events_in(s, message_id), annotator)
        if kind == "label":
            kind = "correct" if previous else "label"
        row = m.AnnotationEvent(
            message_id=message_id,
            annotator_id=who.id,
            kind=kind,
            labels=list(labels),
            model_version_id=model_version_id,
            accepted_suggestion=accepted_suggestion,
            seconds=seconds,
            source="tui",
            role=who.role,
        )
        s.add(row)
        s.flush()
        assert row.id is not None
        release(conn, message_id, who.id)
        shown = following
        if shown is None and candidates:
            shown = claim_first(conn, policy, who.id, candidates)
        view = None if shown is None else _shown(s, shown, annotator, before, after, suggest)
        return Saved(row.id, kind, previous, view)


def message_display(
    engine: Engine,
    suggest: Callable[[int], Suggestion | None],
    message_id: int,
    annotator: str,
    before: int,
    after: int,
) -> MessageDisplay:
    """What the annotate screen draws for a message, read in one transaction."""
    with engine.connect() as conn, Session(bind=conn) as s:
        return _shown(s, message_id, annotator, before, after, suggest)


def _shown(
    s: Session,
    message_id: int,
    annotator: str,
    before: int,
    after: int,
    suggest: Callable[[int], Suggestion | None],
) -> MessageDisplay:
    row = s.exec(
        select(m.CounselingMessage, m.Conversation.external_id)
        .join(m.Conversation)
        .where(m.CounselingMessage.id == message_id)
    ).first()
    if row is None:
        raise StoreError(f"no message with id {message_id}")
    message = message_view(*row)
    turns = s.exec(
        select(m.CounselingMessage)
        .where(m.CounselingMessage.conversation_id == message.conversation_id)
        .where(m.CounselingMessage.position >= message.position - before)
        .where(m.CounselingMessage.position <= message.position + after)
        .order_by(col(m.CounselingMessage.position))
    ).all()
    events = events_in(s, message_id)
    return MessageDisplay(
        message,
        tuple(message_view(t, message.conversation_external_id) for t in turns),
        events,
        _labels_of(events, annotator),
        suggest(message_id),
    )


def _labels_of(events: Sequence[EventView], annotator: str) -> tuple[str, ...] | None:
    """An annotator's current labels, derived from a message's events."""
    if not events:
        return None
    rows = [
        EventRow(e.id, e.message_id, e.annotator, e.kind, e.labels, e.target_event_id)
        for e in events
    ]
    return derive(events[0].message_id, rows).coder_labels.get(annotator)
