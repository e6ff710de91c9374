"""Writing one batch of validated import rows: conversations, messages, then their labels."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, Table, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel

from store.db import driver_sql, in_chunks, insert_ignoring
from store.errors import InputError
from store.io.import_labels import write_labels
from store.io.plan import Plan, Record, Reject

# Core tables: the import's hot loops work below the ORM.
MESSAGES: Table = SQLModel.metadata.tables["messages"]
CONVERSATIONS: Table = SQLModel.metadata.tables["conversations"]


def write_batch(conn: Connection, plan: Plan, batch: list[Record], skip_bad: bool) -> None:
    """Write a batch of records inside the import's transaction: records that clash with
    stored messages are InputErrors (rejects with `skip_bad`), new conversations and
    messages are inserted, then the rows' labels (store/io/import_labels.py)."""
    file, unit = str(plan.source.path), plan.source.unit
    existing: dict[str, tuple[int, int, int, str]] = {}
    if not plan.store_was_empty:
        ids = [r.external_id for r in batch]
        for chunk in in_chunks(ids):
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
        for chunk in in_chunks(wanted):
            for mid, ext in conn.execute(
                select(MESSAGES.c.id, MESSAGES.c.external_id).where(
                    MESSAGES.c.external_id.in_(chunk)
                )
            ):
                message_ids[ext] = mid
    write_labels(conn, plan, kept, message_ids, existing)


def _insert_conversations(conn: Connection, plan: Plan, rows: list[dict[str, Any]]) -> None:
    """ON CONFLICT DO NOTHING (another import may create one meanwhile), then read ids."""
    statement = insert_ignoring(conn, CONVERSATIONS, "external_id").returning(
        CONVERSATIONS.c.external_id
    )
    for chunk in in_chunks(rows):
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
    meta = "CAST(? AS JSON)" if conn.dialect.name == "postgresql" else "?"
    marks = ", ".join(meta if c == "meta" else "?" for c in _MESSAGE_COLUMNS)
    sql = f"INSERT INTO messages ({', '.join(_MESSAGE_COLUMNS)}) VALUES ({marks})"
    conn.exec_driver_sql(driver_sql(conn, sql), rows)


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
    for chunk in in_chunks(list(wanted)):
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
