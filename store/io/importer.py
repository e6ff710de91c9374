"""Import messages (and existing labels) from CSV, JSONL or Parquet: all or nothing."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Table, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel

from store import models as m
from store.db import insert_ignoring, insert_or_get, writing
from store.domain import ImportReport
from store.errors import InputError, StoreError
from store.io.atomic import atomic_writer
from store.io.labelmap import label_names
from store.io.readers import open_rows
from store.io.rows import ColumnMap, Plan, Record, Reject, records
from store.labels import EventRow, derive
from store.names import check_annotator_name
from store.repository import Repository

__all__ = ["BATCH_ROWS", "ColumnMap", "import_file"]

BATCH_ROWS = 5_000

# Core tables: the import's hot loops work below the ORM.
MESSAGES: Table = SQLModel.metadata.tables["messages"]
CONVERSATIONS: Table = SQLModel.metadata.tables["conversations"]
EVENTS: Table = SQLModel.metadata.tables["annotation_events"]
ANNOTATORS: Table = SQLModel.metadata.tables["annotators"]

ProgressFn = Callable[[int, int], None]
"""Called with (bytes read, total bytes)."""


def import_file(
    repo: Repository,
    path: Path,
    columns: ColumnMap,
    *,
    fmt: str | None = None,
    max_text_chars: int = 100_000,
    skip_bad: bool = False,
    rejects_path: Path | None = None,
    progress: ProgressFn | None = None,
) -> ImportReport:
    """Import one file in a single transaction.

    Any invalid row raises InputError and leaves the store unchanged, unless `skip_bad`,
    in which case bad rows are written with their reasons to `rejects_path` (JSONL).
    Re-importing a file adds nothing: messages are matched on their external ids.
    """
    started = time.perf_counter()
    source = open_rows(path, fmt)
    if columns.label and not (columns.annotator or columns.annotator_column):
        raise StoreError("--label needs --annotator or --annotator-column: whose labels are these?")
    if columns.annotator_column and not columns.label:
        raise StoreError("--annotator-column needs --label: which column holds the codes?")
    keys: frozenset[str] = frozenset()
    multi = False
    names = None
    if columns.label:
        book = repo.codebook()
        keys, multi = frozenset(book.keys()), book.multi_label
        names = label_names(book, columns.label_map)
    if columns.annotator is not None and not columns.annotator.strip():
        raise StoreError("--annotator must not be empty")
    if columns.annotator is not None:
        check_annotator_name(columns.annotator)
    conflict = f"{path}: another import wrote the same messages meanwhile; nothing was "
    conflict += "imported from this file: run it again (it adds only what is missing)"
    with writing(repo.engine, conflict) as conn:
        plan = Plan(
            source=source,
            columns=columns,
            technique_keys=keys,
            multi_label=multi,
            max_text_chars=max_text_chars,
            annotator_id=(
                _annotator_id(conn, columns.annotator)
                if columns.annotator and not columns.annotator_column
                else None
            ),
            store_was_empty=conn.execute(select(MESSAGES.c.id).limit(1)).first() is None,
            label_names=names,
        )
        for cid, ext, meta in conn.execute(
            select(CONVERSATIONS.c.id, CONVERSATIONS.c.external_id, CONVERSATIONS.c.meta)
        ):
            plan.conversation_ids[ext] = cid
            plan.conversation_meta[ext] = meta
        if not columns.order and not plan.store_was_empty:
            # Without --order, new turns of a stored conversation go after its last turn.
            by_id = {cid: ext for ext, cid in plan.conversation_ids.items()}
            for cid, last in conn.execute(
                select(MESSAGES.c.conversation_id, func.max(MESSAGES.c.position)).group_by(
                    MESSAGES.c.conversation_id
                )
            ):
                plan.next_position[by_id[cid]] = last + 1
        batch: list[Record] = []
        for record in records(plan, skip_bad):
            batch.append(record)
            if len(batch) >= BATCH_ROWS:
                _write_batch(conn, plan, batch, skip_bad)
                batch = []
                if progress:
                    progress(source.bytes_read, source.total_bytes)
        if batch:
            _write_batch(conn, plan, batch, skip_bad)
        if progress:
            progress(source.total_bytes, source.total_bytes)
        if plan.rejects and rejects_path is not None:
            _write_rejects(rejects_path, str(path), plan.rejects)
    return ImportReport(
        file=str(path),
        rows=plan.rows,
        messages_added=plan.added,
        messages_existing=plan.existing,
        conversations_added=plan.conversations_added,
        labels_added=plan.labels_added,
        rejected=len(plan.rejects),
        seconds=round(time.perf_counter() - started, 3),
    )


def _annotator_id(conn: Connection, name: str) -> int:
    """The annotator's id, created inside the import's transaction (so a failed import
    leaves no trace of it)."""
    values = {"name": name.strip(), "role": "expert", "created_at": m.utcnow()}
    return insert_or_get(conn, ANNOTATORS, "name", values)


# -- writing --------------------------------------------------------------------------------


def _write_batch(conn: Connection, plan: Plan, batch: list[Record], skip_bad: bool) -> None:
    file, unit = str(plan.source.path), plan.source.unit
    existing: dict[str, tuple[int, int, int, str]] = {}
    if not plan.store_was_empty:
        ids = [r.external_id for r in batch]
        for chunk in _chunks(ids, 900):
            for row in conn.execute(
                select(
                    MESSAGES.c.external_id,
                    MESSAGES.c.id,
                    MESSAGES.c.conversation_id,
                    MESSAGES.c.position,
                    MESSAGES.c.text,
                ).where(MESSAGES.c.external_id.in_(chunk))
            ):
                existing[row[0]] = (row[1], row[2], row[3], row[4])

    taken = {} if plan.store_was_empty else _taken_positions(conn, plan, batch, existing)
    kept: list[Record] = []
    for record in batch:
        try:
            known = existing.get(record.external_id)
            if record.repeat:
                kept.append(record)
                continue
            if known is not None and known[3] != record.text:
                raise InputError(
                    file,
                    record.line,
                    plan.columns.text,
                    f"message {record.external_id!r} is already in the store with different text",
                    unit,
                )
            holder = taken.get((record.conversation, record.position))
            if known is None and holder is not None:
                raise InputError(
                    file,
                    record.line,
                    plan.columns.order,
                    f"conversation {record.conversation!r} already has message {holder!r} at "
                    f"position {record.position}",
                    unit,
                )
            kept.append(record)
        except InputError as exc:
            if not skip_bad:
                raise
            plan.rejects.append(
                Reject(record.line, exc.column, exc.problem, {"id": record.external_id})
            )

    new_conversations = [
        {"external_id": ext, "meta": meta, "source_file": file}
        for ext, meta in _new_conversations(plan, kept)
    ]
    if new_conversations:
        _insert_conversations(conn, plan, new_conversations)

    new_rows: list[tuple[Any, ...]] = []
    message_ids: dict[str, int] = {}
    conversation_ids = plan.conversation_ids
    dumps = json.dumps
    for record in kept:
        known = existing.get(record.external_id)
        if known is not None:
            message_ids[record.external_id] = known[0]
            plan.existing += not record.repeat
            continue
        if record.repeat:
            continue
        new_rows.append(
            (
                record.external_id,
                conversation_ids[record.conversation],
                record.position,
                record.speaker,
                record.text,
                record.labelable,
                dumps(record.meta),
                file,
                record.line,
            )
        )
    if new_rows:
        try:
            _insert_messages(conn, new_rows)
        except IntegrityError as exc:
            if "position" in str(exc):
                raise InputError(
                    file,
                    None,
                    plan.columns.order,
                    "two messages share a conversation and position; check the --order column",
                ) from None
            raise
        plan.added += len(new_rows)
    wanted = list({r.external_id for r in kept if r.labels and r.external_id not in message_ids})
    if wanted:
        for chunk in _chunks(wanted, 900):
            for mid, ext in conn.execute(
                select(MESSAGES.c.id, MESSAGES.c.external_id).where(
                    MESSAGES.c.external_id.in_(chunk)
                )
            ):
                message_ids[ext] = mid
    _write_labels(conn, plan, kept, message_ids, existing)


def _insert_conversations(conn: Connection, plan: Plan, rows: list[dict[str, Any]]) -> None:
    """ON CONFLICT DO NOTHING (another import may create one meanwhile), then read ids."""
    statement = insert_ignoring(conn, CONVERSATIONS, "external_id").returning(
        CONVERSATIONS.c.external_id
    )
    for chunk in _chunks(rows, 900):
        names = [row["external_id"] for row in chunk]
        plan.conversations_added += len(conn.execute(statement, chunk).all())
        for cid, ext in conn.execute(
            select(CONVERSATIONS.c.id, CONVERSATIONS.c.external_id).where(
                CONVERSATIONS.c.external_id.in_(names)
            )
        ):
            plan.conversation_ids[ext] = cid


_MESSAGE_COLUMNS = (
    "external_id",
    "conversation_id",
    "position",
    "speaker",
    "text",
    "labelable",
    "meta",
    "source_file",
    "source_line",
)


def _insert_messages(conn: Connection, rows: list[tuple[Any, ...]]) -> None:
    """The hot path of big imports: one driver-level executemany, metadata pre-encoded.

    Core inserts spend more time building parameters than SQLite spends writing; RETURNING
    with ordered parameters even goes row by row on SQLite.
    """
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    meta = f"CAST({mark} AS JSON)" if conn.dialect.name == "postgresql" else mark
    marks = ", ".join(meta if c == "meta" else mark for c in _MESSAGE_COLUMNS)
    sql = f"INSERT INTO messages ({', '.join(_MESSAGE_COLUMNS)}) VALUES ({marks})"
    conn.exec_driver_sql(sql, rows)


def _taken_positions(
    conn: Connection, plan: Plan, batch: list[Record], existing: dict[str, Any]
) -> dict[tuple[str, int | None], str]:
    """(conversation, position) -> external id, for stored messages that new rows would clash
    with; the clash is then reported with the row's line instead of as a constraint error."""
    wanted: dict[int, str] = {}
    for record in batch:
        cid = plan.conversation_ids.get(record.conversation)
        if cid is not None and record.external_id not in existing:
            wanted[cid] = record.conversation
    taken: dict[tuple[str, int | None], str] = {}
    for chunk in _chunks(list(wanted), 900):
        for cid, position, ext in conn.execute(
            select(
                MESSAGES.c.conversation_id,
                MESSAGES.c.position,
                MESSAGES.c.external_id,
            ).where(MESSAGES.c.conversation_id.in_(chunk))
        ):
            taken[(wanted[cid], position)] = ext
    return taken


def _new_conversations(plan: Plan, records: list[Record]) -> list[tuple[str, dict[str, Any]]]:
    fresh: dict[str, dict[str, Any]] = {}
    for record in records:
        if record.conversation not in plan.conversation_ids and record.conversation not in fresh:
            fresh[record.conversation] = record.conversation_meta
    return list(fresh.items())


def _write_labels(
    conn: Connection,
    plan: Plan,
    records: list[Record],
    message_ids: dict[str, int],
    existing: dict[str, tuple[int, int, int, str]],
) -> None:
    labelled = [r for r in records if r.labels]
    if not labelled:
        return
    coder_ids: dict[int, int] = {}
    for i, record in enumerate(labelled):
        if record.coder is not None:
            if record.coder not in plan.coder_ids:
                plan.coder_ids[record.coder] = _annotator_id(conn, record.coder)
            coder_ids[i] = plan.coder_ids[record.coder]
        elif plan.annotator_id is not None:
            coder_ids[i] = plan.annotator_id
    if not coder_ids:
        return
    # Re-importing adds nothing: skip labels equal to the coder's current ones.
    current: dict[tuple[int, int], tuple[str, ...]] = {}
    already = list({message_ids[r.external_id] for r in labelled if r.external_id in existing})
    for chunk in _chunks(already, 900):
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


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _write_rejects(path: Path, file: str, rejects: list[Reject]) -> None:
    with atomic_writer(path) as fh:
        for r in sorted(rejects, key=lambda r: r.line):
            row = {
                "file": file,
                "line": r.line,
                "column": r.column,
                "problem": r.problem,
                "row": r.row,
            }
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
