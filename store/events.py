"""Annotation events: appending one, reading a message's history, deriving current states."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence

from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, col, select

from store import models as m
from store.domain import CodebookView, EventView
from store.errors import StoreError
from store.labels import LABELLING_KINDS, EventRow, Gold, MessageState, derive, resolve
from store.team import DECIDING_ROLES, release, role_refusal

EVENT_ROW_BATCH = 20_000


def add_event(
    engine: Engine,
    codebook: Callable[[], CodebookView] | None,
    message_id: int,
    annotator: str,
    kind: str,
    labels: Sequence[str] = (),
    *,
    target_event_id: int | None = None,
    model_version_id: int | None = None,
    accepted_suggestion: bool | None = None,
    seconds: float | None = None,
    note: str | None = None,
    reason: str | None = None,
    source: str = "tui",
) -> int:
    """Append one annotation event and commit it; returns the event id. Labels are checked
    against `codebook()` (None: any technique key is taken)."""
    if kind not in m.EVENT_KINDS:
        raise StoreError(f"event kind must be one of {', '.join(m.EVENT_KINDS)}, got {kind!r}")
    if kind in LABELLING_KINDS or kind == "adjudicate":
        check_labels(labels, codebook)
    elif labels:
        raise StoreError(f"a {kind} event carries no labels")
    with Session(engine, expire_on_commit=False) as s:
        who = s.exec(select(m.Annotator).where(m.Annotator.name == annotator)).first()
        if who is None:
            raise StoreError(f"unknown annotator {annotator!r}")
        if kind == "adjudicate" and who.role not in DECIDING_ROLES:
            roles = {a.name: a.role for a in s.exec(select(m.Annotator))}
            raise StoreError(role_refusal(annotator, who.role, "adjudicate", roles))
        if s.get(m.CounselingMessage, message_id) is None:
            raise StoreError(f"no message with id {message_id}")
        if kind == "undo":
            target = s.get(m.AnnotationEvent, target_event_id) if target_event_id else None
            if target is None or target.message_id != message_id:
                raise StoreError("undo must name an event of the same message")
            if target.annotator_id != who.id:
                raise StoreError("an annotator can only undo their own events")
        assert who.id is not None
        row = m.AnnotationEvent(
            message_id=message_id,
            annotator_id=who.id,
            kind=kind,
            labels=list(labels),
            target_event_id=target_event_id,
            model_version_id=model_version_id,
            accepted_suggestion=accepted_suggestion,
            seconds=seconds,
            note=note,
            reason=reason,
            source=source,
            role=who.role,
        )
        s.add(row)
        if kind in LABELLING_KINDS or kind == "skip":
            s.flush()
            release(s.connection(), message_id, who.id)
        s.commit()
        assert row.id is not None
        return row.id


def check_labels(labels: Sequence[str], codebook: Callable[[], CodebookView] | None) -> None:
    """Refuse an empty label set, unknown techniques, and several labels where the codebook
    takes one."""
    if not labels:
        raise StoreError("a labelling event needs at least one label")
    if codebook is None:
        return
    book = codebook()
    unknown = [x for x in labels if x not in book.keys()]
    if unknown:
        raise StoreError(
            f"unknown technique {unknown[0]!r} for codebook '{book.key}'"
            f" (known: {', '.join(book.keys())})"
        )
    if len(labels) > 1 and not book.multi_label:
        raise StoreError(f"codebook '{book.key}' takes one label per message")


def events(engine: Engine, message_id: int) -> list[EventView]:
    """Every event on a message, oldest first."""
    with Session(engine) as s:
        return list(events_in(s, message_id))


def events_in(s: Session, message_id: int) -> tuple[EventView, ...]:
    """`events` inside a caller's session (store.saving reads them in its transaction)."""
    rows = s.exec(
        select(m.AnnotationEvent, m.Annotator.name)
        .join(m.Annotator)
        .where(m.AnnotationEvent.message_id == message_id)
        .order_by(col(m.AnnotationEvent.id))
    ).all()
    return tuple(
        EventView(
            id=e.id or 0,
            message_id=e.message_id,
            annotator=name,
            kind=e.kind,
            labels=tuple(e.labels),
            target_event_id=e.target_event_id,
            model_version_id=e.model_version_id,
            accepted_suggestion=e.accepted_suggestion,
            seconds=e.seconds,
            note=e.note,
            reason=e.reason,
            source=e.source,
            created_at=e.created_at.isoformat(),
            role=e.role,
        )
        for e, name in rows
    )


def iter_states(engine: Engine, message_ids: Iterable[int] | None = None) -> Iterator[MessageState]:
    """The derived state of every message that has events (or of `message_ids`)."""
    wanted = set(message_ids) if message_ids is not None else None
    table, annotators = (
        SQLModel.metadata.tables["annotation_events"],
        SQLModel.metadata.tables["annotators"],
    )
    q = (
        sa_select(
            table.c.id,
            table.c.message_id,
            annotators.c.name,
            table.c.kind,
            table.c.labels,
            table.c.target_event_id,
            table.c.model_version_id,
        )
        .join(annotators, annotators.c.id == table.c.annotator_id)
        .order_by(table.c.message_id, table.c.id)
    )
    if wanted is not None and len(wanted) <= 5_000:
        q = q.where(table.c.message_id.in_(wanted))
    with engine.connect() as conn:
        current: int | None = None
        bucket: list[EventRow] = []
        for row in conn.execute(q.execution_options(yield_per=EVENT_ROW_BATCH)):
            eid, mid, name, kind, labels, target, model = row
            if wanted is not None and mid not in wanted:
                continue
            if mid != current:
                if bucket:
                    yield derive(bucket[0].message_id, bucket)
                current, bucket = mid, []
            bucket.append(EventRow(eid, mid, name, kind, tuple(labels), target, model))
        if bucket:
            yield derive(bucket[0].message_id, bucket)


def gold(engine: Engine, weakest: str = "single") -> dict[int, Gold]:
    """Message id -> resolved gold label, for every message that has one."""
    result: dict[int, Gold] = {}
    for state in iter_states(engine):
        g = resolve(state, weakest)
        if g is not None:
            result[state.message_id] = g
    return result


def current_labels(engine: Engine, message_id: int, annotator: str) -> tuple[str, ...] | None:
    """This annotator's current labels on a message (None when they have none)."""
    for state in iter_states(engine, [message_id]):
        return state.coder_labels.get(annotator)
    return None
