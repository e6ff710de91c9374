"""Import messages (and existing labels) from CSV, JSONL or Parquet: all or nothing."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import func, select

from store.db import writing
from store.domain import ImportReport
from store.errors import StoreError
from store.io.atomic import atomic_writer
from store.io.batch import CONVERSATIONS, MESSAGES, write_batch
from store.io.import_labels import annotator_id
from store.io.labelmap import label_names
from store.io.plan import ColumnMap, Plan, Record, Reject
from store.io.readers import open_rows
from store.io.rows import records
from store.names import check_annotator_name
from store.repository import Repository

__all__ = ["BATCH_ROWS", "ColumnMap", "import_file"]

BATCH_ROWS = 5_000

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
                annotator_id(conn, columns.annotator)
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
                write_batch(conn, plan, batch, skip_bad)
                batch = []
                if progress:
                    progress(source.bytes_read, source.total_bytes)
        if batch:
            write_batch(conn, plan, batch, skip_bad)
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
