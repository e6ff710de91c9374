"""Import messages (and existing labels) from CSV, JSONL or Parquet: all or nothing."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, insert, select
from sqlalchemy.exc import IntegrityError

from store import models as m
from store.domain import ImportReport
from store.errors import InputError, StoreError
from store.io.atomic import atomic_writer
from store.io.readers import RowSource, open_rows
from store.labels import EventRow, derive
from store.repository import Repository

BATCH_ROWS = 5_000
MISSING_LABELS = frozenset({"", "n/a", "na", "nan", "none", "null"})
"""Label cells that mean 'no label' (AnnoMI writes n/a on client turns)."""

ProgressFn = Callable[[int, int], None]
"""Called with (bytes read, total bytes)."""


@dataclass(frozen=True)
class ColumnMap:
    """Which input columns hold what. Unmapped columns are kept as message metadata."""

    text: str = "text"
    speaker: str | None = None
    conversation: str | None = None
    order: str | None = None
    id: str | None = None
    label: str | None = None
    annotator: str | None = None
    labelable_speakers: tuple[str, ...] = ()
    conversation_fields: tuple[str, ...] = ()
    label_separator: str = ";"
    id_prefix: str = ""

    def mapped(self) -> set[str]:
        cols = {self.text, self.speaker, self.conversation, self.order, self.id, self.label}
        return {c for c in cols if c} | set(self.conversation_fields)

    def required(self) -> list[str]:
        cols = [self.text, self.speaker, self.conversation, self.order, self.id, self.label]
        return [c for c in cols if c] + list(self.conversation_fields)


@dataclass(slots=True)
class _Record:
    line: int
    conversation: str
    external_id: str
    position: int | None
    speaker: str
    text: str
    labelable: bool
    labels: tuple[str, ...]
    meta: dict[str, Any]
    conversation_meta: dict[str, Any]


@dataclass
class _Reject:
    line: int
    column: str | None
    problem: str
    row: dict[str, Any]


@dataclass
class _Plan:
    """State of one import while it streams."""

    source: RowSource
    columns: ColumnMap
    technique_keys: frozenset[str]
    multi_label: bool
    max_text_chars: int
    annotator_id: int | None
    store_was_empty: bool
    conversation_ids: dict[str, int] = field(default_factory=dict)
    conversation_meta: dict[str, dict[str, Any]] = field(default_factory=dict)
    next_position: dict[str, int] = field(default_factory=dict)
    seen_ids: dict[str, int] = field(default_factory=dict)
    """External id -> line, for every row accepted so far."""
    rejects: list[_Reject] = field(default_factory=list)
    added: int = 0
    existing: int = 0
    conversations_added: int = 0
    labels_added: int = 0
    rows: int = 0
    mapped: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        self.mapped = frozenset(self.columns.mapped())


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
    if columns.label and not columns.annotator:
        raise StoreError("--label needs --annotator: whose labels are these?")
    keys: frozenset[str] = frozenset()
    multi = False
    if columns.label:
        book = repo.codebook()
        keys, multi = frozenset(book.keys()), book.multi_label
    if columns.annotator is not None and not columns.annotator.strip():
        raise StoreError("--annotator must not be empty")
    with repo.engine.begin() as conn:
        plan = _Plan(
            source=source,
            columns=columns,
            technique_keys=keys,
            multi_label=multi,
            max_text_chars=max_text_chars,
            annotator_id=_annotator_id(conn, columns.annotator) if columns.annotator else None,
            store_was_empty=conn.execute(select(m.CounselingMessage.id).limit(1)).first() is None,
        )
        for cid, ext, meta in conn.execute(
            select(m.Conversation.id, m.Conversation.external_id, m.Conversation.meta)
        ):
            plan.conversation_ids[ext] = cid
            plan.conversation_meta[ext] = meta
        batch: list[_Record] = []
        for record in _records(plan, skip_bad):
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
    name = name.strip()
    row = conn.execute(select(m.Annotator.id).where(m.Annotator.name == name)).first()
    if row is not None:
        return int(row[0])
    result = conn.execute(
        insert(m.Annotator).values(name=name, role="expert", created_at=m.utcnow())
    )
    return int(result.inserted_primary_key[0])


# -- validation -----------------------------------------------------------------------------


def _records(plan: _Plan, skip_bad: bool) -> Iterator[_Record]:
    source, cols = plan.source, plan.columns
    checked_header = False
    for line, values in source.rows():
        if not checked_header:
            _check_columns(source, cols)
            checked_header = True
        plan.rows += 1
        try:
            yield _validate(plan, line, values)
        except InputError as exc:
            if not skip_bad:
                raise
            plan.rejects.append(_Reject(line, exc.column, exc.problem, _jsonable(values)))
    if not checked_header:
        _check_columns(source, cols)


def _check_columns(source: RowSource, cols: ColumnMap) -> None:
    if source.columns is None:  # JSONL: checked row by row
        return
    for name in cols.required():
        if name not in source.columns:
            raise InputError(
                str(source.path),
                1 if source.format == "csv" else None,
                name,
                f"no such column; the file has: {', '.join(source.columns)}",
            )


def _as_text(plan: _Plan, line: int, column: str, value: Any, *, empty_ok: bool = False) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        elif value is None and empty_ok:
            return ""
        else:
            raise InputError(
                str(plan.source.path),
                line,
                column,
                f"must be a string or integer, got {_type_name(value)}",
                plan.source.unit,
            )
    text = str(value).strip()
    if not text and not empty_ok:
        raise InputError(str(plan.source.path), line, column, "is empty", plan.source.unit)
    return text


_MISSING = object()


def _fail(plan: _Plan, line: int, column: str | None, problem: str) -> InputError:
    return InputError(str(plan.source.path), line, column, problem, plan.source.unit)


def _get(plan: _Plan, line: int, values: dict[str, Any], column: str) -> Any:
    value = values.get(column, _MISSING)
    if value is _MISSING:
        raise _fail(plan, line, column, "missing field")
    return value


def _text_field(plan: _Plan, line: int, values: dict[str, Any], column: str) -> str:
    value = _get(plan, line, values, column)
    if type(value) is str:  # the common case, kept cheap: this runs millions of times
        text = value.strip()
        if text:
            return text
    return _as_text(plan, line, column, value)


def _validate(plan: _Plan, line: int, values: dict[str, Any]) -> _Record:
    cols = plan.columns
    raw_text = _get(plan, line, values, cols.text)
    if type(raw_text) is not str:
        raise _fail(
            plan, line, cols.text, f"message text must be a string, got {_type_name(raw_text)}"
        )
    if not raw_text.strip():
        raise _fail(plan, line, cols.text, "message text is empty")
    if len(raw_text) > plan.max_text_chars:
        raise _fail(
            plan,
            line,
            cols.text,
            f"message text is {len(raw_text):,} characters, over the limit of "
            f"{plan.max_text_chars:,} (raise [import] max_text_chars in techne.toml)",
        )
    if "\x00" in raw_text:
        raise _fail(
            plan, line, cols.text, "message text contains a NUL byte, which databases cannot store"
        )

    speaker = _text_field(plan, line, values, cols.speaker).lower() if cols.speaker else ""
    labelable = not cols.labelable_speakers or speaker in cols.labelable_speakers

    position: int | None = None
    if cols.order:
        value = _get(plan, line, values, cols.order)
        position = value if type(value) is int else _as_int(plan, line, cols.order, value)

    conversation = ""
    if cols.conversation:
        conversation = cols.id_prefix + _text_field(plan, line, values, cols.conversation)
    if cols.id:
        external_id = cols.id_prefix + _text_field(plan, line, values, cols.id)
    elif cols.conversation and position is not None:
        external_id = f"{conversation}:{position}"
    elif cols.conversation:
        external_id = f"{conversation}:#{plan.next_position.get(conversation, 0)}"
    else:
        external_id = f"{cols.id_prefix}{plan.source.path.stem}:{line}"
    if not conversation:
        conversation = external_id
    first = plan.seen_ids.get(external_id)
    if first is not None:
        raise _fail(
            plan,
            line,
            cols.id or cols.order,
            f"duplicate message id {external_id!r} (first on {plan.source.unit} {first})",
        )

    labels: tuple[str, ...] = ()
    if cols.label and labelable:
        labels = _labels(plan, line, _get(plan, line, values, cols.label))

    known_meta = plan.conversation_meta.get(conversation)
    conversation_meta = {}
    for name in cols.conversation_fields:
        value = _jsonable_value(_get(plan, line, values, name))
        if known_meta is not None and name in known_meta and known_meta[name] != value:
            raise _fail(
                plan,
                line,
                name,
                f"must be constant within conversation {conversation!r}: "
                f"{known_meta[name]!r} before, {value!r} here",
            )
        conversation_meta[name] = value
    mapped = plan.mapped
    if plan.source.format == "csv":  # every CSV cell is already a string
        meta = {k: v for k, v in values.items() if k not in mapped}
    else:
        meta = {k: _jsonable_value(v) for k, v in values.items() if k not in mapped}

    if position is None:
        position = plan.next_position.get(conversation, 0)
    if position >= plan.next_position.get(conversation, 0):
        plan.next_position[conversation] = position + 1
    plan.seen_ids[external_id] = line
    if known_meta is None:
        plan.conversation_meta[conversation] = conversation_meta
    return _Record(
        line,
        conversation,
        external_id,
        position,
        speaker,
        raw_text,
        labelable,
        labels,
        meta,
        conversation_meta,
    )


def _as_int(plan: _Plan, line: int, column: str, value: Any) -> int:
    problem = None
    if isinstance(value, bool):
        problem = "got a boolean"
    elif isinstance(value, int):
        return value
    elif isinstance(value, float):
        if math.isfinite(value) and value.is_integer():
            return int(value)
        problem = f"got {value!r}"
    elif isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            problem = f"got {value!r}"
    else:
        problem = f"got {_type_name(value)}"
    raise InputError(
        str(plan.source.path), line, column, f"must be an integer, {problem}", plan.source.unit
    )


def _labels(plan: _Plan, line: int, value: Any) -> tuple[str, ...]:
    column = plan.columns.label
    file, unit = str(plan.source.path), plan.source.unit
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ()
    if isinstance(value, str):
        if value.strip().lower() in MISSING_LABELS:
            return ()
        items = [v.strip() for v in value.split(plan.columns.label_separator)]
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        items = [v.strip() for v in value]
    else:
        raise InputError(
            file,
            line,
            column,
            f"label must be a string or list of strings, got {_type_name(value)}",
            unit,
        )
    items = [v for v in items if v]
    if not items:
        return ()
    for item in items:
        if item not in plan.technique_keys:
            raise InputError(
                file,
                line,
                column,
                f"unknown technique {item!r}; the codebook has: "
                + ", ".join(sorted(plan.technique_keys)),
                unit,
            )
    if len(items) > 1 and not plan.multi_label:
        raise InputError(
            file,
            line,
            column,
            f"{len(items)} labels {items} but the codebook takes one per message",
            unit,
        )
    return tuple(dict.fromkeys(items))


def _type_name(value: Any) -> str:
    return {dict: "an object", list: "a list", type(None): "null"}.get(
        type(value), type(value).__name__
    )


def _jsonable_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, list | tuple):
        return [_jsonable_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable_value(v) for k, v in value.items()}
    return str(value)


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return {str(k): _jsonable_value(v) for k, v in values.items()}


# -- writing --------------------------------------------------------------------------------


def _write_batch(conn: Connection, plan: _Plan, batch: list[_Record], skip_bad: bool) -> None:
    file, unit = str(plan.source.path), plan.source.unit
    existing: dict[str, tuple[int, int, int, str]] = {}
    if not plan.store_was_empty:
        ids = [r.external_id for r in batch]
        for chunk in _chunks(ids, 900):
            for row in conn.execute(
                select(
                    m.CounselingMessage.external_id,
                    m.CounselingMessage.id,
                    m.CounselingMessage.conversation_id,
                    m.CounselingMessage.position,
                    m.CounselingMessage.text,
                ).where(m.CounselingMessage.external_id.in_(chunk))  # type: ignore[attr-defined]
            ):
                existing[row[0]] = (row[1], row[2], row[3], row[4])

    kept: list[_Record] = []
    for record in batch:
        try:
            known = existing.get(record.external_id)
            if known is not None and known[3] != record.text:
                raise InputError(
                    file,
                    record.line,
                    plan.columns.text,
                    f"message {record.external_id!r} is already in the store with different text",
                    unit,
                )
            kept.append(record)
        except InputError as exc:
            if not skip_bad:
                raise
            plan.rejects.append(
                _Reject(record.line, exc.column, exc.problem, {"id": record.external_id})
            )

    new_conversations = [
        {"external_id": ext, "meta": meta, "source_file": file}
        for ext, meta in _new_conversations(plan, kept)
    ]
    if new_conversations:
        result = conn.execute(
            insert(m.Conversation).returning(
                m.Conversation.id, m.Conversation.external_id, sort_by_parameter_order=True
            ),
            new_conversations,
        )
        for cid, ext in result:
            plan.conversation_ids[ext] = cid
        plan.conversations_added += len(new_conversations)

    new_rows: list[tuple[Any, ...]] = []
    message_ids: dict[str, int] = {}
    conversation_ids = plan.conversation_ids
    dumps = json.dumps
    for record in kept:
        known = existing.get(record.external_id)
        if known is not None:
            message_ids[record.external_id] = known[0]
            plan.existing += 1
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
        wanted = [r.external_id for r in kept if r.labels and r.external_id not in message_ids]
        for chunk in _chunks(wanted, 900):
            for mid, ext in conn.execute(
                select(m.CounselingMessage.id, m.CounselingMessage.external_id).where(
                    m.CounselingMessage.external_id.in_(chunk)  # type: ignore[attr-defined]
                )
            ):
                message_ids[ext] = mid
    _write_labels(conn, plan, kept, message_ids, existing)


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


def _new_conversations(plan: _Plan, records: list[_Record]) -> list[tuple[str, dict[str, Any]]]:
    fresh: dict[str, dict[str, Any]] = {}
    for record in records:
        if record.conversation not in plan.conversation_ids and record.conversation not in fresh:
            fresh[record.conversation] = record.conversation_meta
    return list(fresh.items())


def _write_labels(
    conn: Connection,
    plan: _Plan,
    records: list[_Record],
    message_ids: dict[str, int],
    existing: dict[str, tuple[int, int, int, str]],
) -> None:
    labelled = [r for r in records if r.labels]
    if not labelled or plan.annotator_id is None:
        return
    current: dict[int, tuple[str, ...]] = {}
    already = [message_ids[r.external_id] for r in labelled if r.external_id in existing]
    for chunk in _chunks(already, 900):
        rows = conn.execute(
            select(
                m.AnnotationEvent.id,
                m.AnnotationEvent.message_id,
                m.AnnotationEvent.kind,
                m.AnnotationEvent.labels,
                m.AnnotationEvent.target_event_id,
            )
            .where(m.AnnotationEvent.message_id.in_(chunk))  # type: ignore[attr-defined]
            .where(m.AnnotationEvent.annotator_id == plan.annotator_id)
            .order_by(m.AnnotationEvent.id)
        ).all()
        per_message: dict[int, list[EventRow]] = {}
        for eid, mid, kind, labels, target in rows:
            per_message.setdefault(mid, []).append(
                EventRow(eid, mid, "_", kind, tuple(labels), target)
            )
        for mid, events in per_message.items():
            labels_now = derive(mid, events).coder_labels.get("_")
            if labels_now is not None:
                current[mid] = labels_now
    events = []
    for record in labelled:
        mid = message_ids[record.external_id]
        if current.get(mid) == record.labels:
            continue
        events.append(
            {
                "message_id": mid,
                "annotator_id": plan.annotator_id,
                "kind": "label",
                "labels": list(record.labels),
                "source": f"import:{plan.source.path.name}:{record.line}",
                "created_at": m.utcnow(),
            }
        )
    if events:
        conn.execute(insert(m.AnnotationEvent), events)
        plan.labels_added += len(events)


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _write_rejects(path: Path, file: str, rejects: list[_Reject]) -> None:
    with atomic_writer(path) as fh:
        for r in rejects:
            row = {
                "file": file,
                "line": r.line,
                "column": r.column,
                "problem": r.problem,
                "row": r.row,
            }
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
