"""Labels that come with imported rows: one event per coder, none for a label already current."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table, insert, select
from sqlmodel import SQLModel

from store import models as m
from store.db import in_chunks, insert_or_get
from store.io.plan import Plan, Record
from store.labels import EventRow, derive

EVENTS: Table = SQLModel.metadata.tables["annotation_events"]
ANNOTATORS: Table = SQLModel.metadata.tables["annotators"]


def annotator_id(conn: Connection, name: str) -> int:
    """The annotator's id, created inside the import's transaction (so a failed import
    leaves no trace of it)."""
    values = {"name": name.strip(), "role": "expert", "created_at": m.utcnow()}
    return insert_or_get(conn, ANNOTATORS, "name", values)


def write_labels(
    conn: Connection,
    plan: Plan,
    records: list[Record],
    message_ids: dict[str, int],
    existing: dict[str, tuple[int, int, int, str]],
) -> None:
    """One label event per coded record (its coder's, or the import's --annotator), except
    where that coder's current labels are already the same: re-importing adds nothing."""
    labelled = [r for r in records if r.labels]
    if not labelled:
        return
    coder_ids: dict[int, int] = {}
    for i, record in enumerate(labelled):
        if record.coder is not None:
            if record.coder not in plan.coder_ids:
                plan.coder_ids[record.coder] = annotator_id(conn, record.coder)
            coder_ids[i] = plan.coder_ids[record.coder]
        elif plan.annotator_id is not None:
            coder_ids[i] = plan.annotator_id
    if not coder_ids:
        return
    # Re-importing adds nothing: skip labels equal to the coder's current ones.
    current: dict[tuple[int, int], tuple[str, ...]] = {}
    already = list({message_ids[r.external_id] for r in labelled if r.external_id in existing})
    for chunk in in_chunks(already):
        rows = conn.execute(
            select(
                EVENTS.c.id,
                EVENTS.c.message_id,
                EVENTS.c.annotator_id,
                EVENTS.c.kind,
                EVENTS.c.labels,
                EVENTS.c.target_event_id,
            )
            .where(EVENTS.c.message_id.in_(chunk))
            .order_by(EVENTS.c.id)
        ).all()
        per_message: dict[int, list[EventRow]] = {}
        for eid, mid, who, kind, labels, target in rows:
            per_message.setdefault(mid, []).append(
                EventRow(eid, mid, str(who), kind, tuple(labels), target)
            )
        for mid, history in per_message.items():
            for who, labels_now in derive(mid, history).coder_labels.items():
                current[(mid, int(who))] = labels_now
    events: list[dict[str, Any]] = []
    roles = _roles(conn, set(coder_ids.values()))
    for i, record in enumerate(labelled):
        if i not in coder_ids:
            continue
        mid = message_ids[record.external_id]
        if current.get((mid, coder_ids[i])) == record.labels:
            continue
        events.append(
            {
                "message_id": mid,
                "annotator_id": coder_ids[i],
                "kind": "label",
                "labels": list(record.labels),
                "source": f"import:{plan.source.path.name}:{record.line}",
                "created_at": m.utcnow(),
                "role": roles.get(coder_ids[i]),
            }
        )
    if events:
        conn.execute(insert(EVENTS), events)
        plan.labels_added += len(events)


def _roles(conn: Connection, annotator_ids: set[int]) -> dict[int, str]:
    """Annotator id -> role now, written on each imported event."""
    rows = conn.execute(
        select(ANNOTATORS.c.id, ANNOTATORS.c.role).where(ANNOTATORS.c.id.in_(sorted(annotator_ids)))
    )
    return {int(i): str(role) for i, role in rows}
