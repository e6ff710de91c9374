"""Row validation for imports: column mapping, types, ids, labels; one InputError per problem."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from store.errors import InputError
from store.io.labelmap import LabelNames
from store.io.readers import RowSource
from store.names import name_problem

MISSING_LABELS = frozenset({"", "n/a", "na", "nan", "none", "null"})
"""Label cells that mean 'no label' (AnnoMI writes n/a on client turns)."""


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
    annotator_column: str | None = None
    """Column naming each row's coder: rows repeating a message are its other coders' labels."""
    labelable_speakers: tuple[str, ...] = ()
    conversation_fields: tuple[str, ...] = ()
    label_separator: str = ";"
    id_prefix: str = ""
    label_map: Path | None = None
    """CSV or TOML file: file label -> technique key (store/io/labelmap.py)."""

    def mapped(self) -> set[str]:
        cols = {
            self.text,
            self.speaker,
            self.conversation,
            self.order,
            self.id,
            self.label,
            self.annotator_column,
        }
        return {c for c in cols if c} | set(self.conversation_fields)

    def required(self) -> list[str]:
        cols = [
            self.text,
            self.speaker,
            self.conversation,
            self.order,
            self.id,
            self.label,
            self.annotator_column,
        ]
        return [c for c in cols if c] + list(self.conversation_fields)


@dataclass(slots=True)
class Record:
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
    coder: str | None = None
    """The row's coder (from --annotator-column)."""
    repeat: bool = False
    """Another coder's row for a message seen earlier in the file: only its label is new."""


@dataclass
class Reject:
    line: int
    column: str | None
    problem: str
    row: dict[str, Any]


@dataclass
class Plan:
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
    seen_positions: dict[tuple[str, int], int] = field(default_factory=dict)
    """(conversation, position) -> line; only needed when ids come from their own column."""
    coder_ids: dict[str, int] = field(default_factory=dict)
    """Coder name -> annotator id, created inside the import's transaction."""
    coded: dict[tuple[str, str], int] = field(default_factory=dict)
    """(external id, coder) -> line, with --annotator-column."""
    first_text: dict[str, int] = field(default_factory=dict)
    """External id -> hash of its text, to check that repeated rows are the same message."""
    rejects: list[Reject] = field(default_factory=list)
    label_names: LabelNames | None = None
    """Label map and technique names (store/io/labelmap.py); None: keys only."""
    added: int = 0
    existing: int = 0
    conversations_added: int = 0
    labels_added: int = 0
    rows: int = 0
    mapped: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        self.mapped = frozenset(self.columns.mapped())


def records(plan: Plan, skip_bad: bool) -> Iterator[Record]:
    source, cols = plan.source, plan.columns
    checked_header = False
    for line, values in source.rows():
        if not checked_header:
            _check_columns(source, cols)
            checked_header = True
        plan.rows += 1
        if isinstance(values, InputError):
            if not skip_bad:
                raise values
            plan.rejects.append(Reject(line, values.column, values.problem, {}))
            continue
        try:
            yield _validate(plan, line, values)
        except InputError as exc:
            if not skip_bad:
                raise
            plan.rejects.append(Reject(line, exc.column, exc.problem, jsonable(values)))
    if not checked_header:
        _check_columns(source, cols)
    if plan.rows == 0:
        raise InputError(str(source.path), None, None, "the file has no rows to import")


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


def _as_text(plan: Plan, line: int, column: str, value: Any, *, empty_ok: bool = False) -> str:
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


def _fail(plan: Plan, line: int, column: str | None, problem: str) -> InputError:
    return InputError(str(plan.source.path), line, column, problem, plan.source.unit)


def _get(plan: Plan, line: int, values: dict[str, Any], column: str) -> Any:
    value = values.get(column, _MISSING)
    if value is _MISSING:
        raise _fail(plan, line, column, "missing field")
    return value


def _text_field(plan: Plan, line: int, values: dict[str, Any], column: str) -> str:
    value = _get(plan, line, values, column)
    if type(value) is str:  # the common case, kept cheap: this runs millions of times
        text = value.strip()
        if text:
            return text
    return _as_text(plan, line, column, value)


def _validate(plan: Plan, line: int, values: dict[str, Any]) -> Record:
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

    if line in plan.source.nul_rows:
        _refuse_nul(plan, line, values)

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
    coder = None
    if cols.annotator_column:
        coder = _text_field(plan, line, values, cols.annotator_column)
        if cols.annotator:
            coder = f"{cols.annotator}-{coder}"
        problem = name_problem(coder)
        if problem is not None:
            raise _fail(plan, line, cols.annotator_column, f"annotator name {problem}")
    first = plan.seen_ids.get(external_id)
    if first is not None and coder is not None:
        return _repeat(plan, line, values, raw_text, external_id, conversation, coder, labelable)
    if first is not None:
        raise _fail(
            plan,
            line,
            cols.id or cols.order,
            f"duplicate message id {external_id!r} (first on {plan.source.unit} {first})",
        )

    if cols.id and cols.order:
        clash = plan.seen_positions.get((conversation, position))  # type: ignore[arg-type]
        if clash is not None:
            raise _fail(
                plan,
                line,
                cols.order,
                f"conversation {conversation!r} already has a message at position {position} "
                f"({plan.source.unit} {clash})",
            )

    labels = _row_labels(plan, line, values, labelable)

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
    if coder is not None:
        plan.coded[(external_id, coder)] = line
        plan.first_text[external_id] = hash((raw_text, speaker))
    if cols.id and cols.order:
        plan.seen_positions[(conversation, position)] = line
    if known_meta is None:
        plan.conversation_meta[conversation] = conversation_meta
    return Record(
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
        coder,
    )


def _refuse_nul(plan: Plan, line: int, values: dict[str, Any]) -> None:
    """Any field (or nested value) with a NUL byte: databases cannot store one."""
    for key, value in values.items():
        stack: list[Any] = [key, value]
        while stack:
            item = stack.pop()
            if isinstance(item, str) and "\x00" in item:
                raise _fail(plan, line, key, "contains a NUL byte, which databases cannot store")
            if isinstance(item, dict):
                stack.extend([*item.keys(), *item.values()])
            elif isinstance(item, list):
                stack.extend(item)


def _repeat(
    plan: Plan,
    line: int,
    values: dict[str, Any],
    text: str,
    external_id: str,
    conversation: str,
    coder: str,
    labelable: bool,
) -> Record:
    """Another coder's row for a message already read: check it is the same message."""
    cols = plan.columns
    earlier = plan.coded.get((external_id, coder))
    if earlier is not None:
        raise _fail(
            plan,
            line,
            cols.annotator_column,
            f"coder {coder!r} already coded message {external_id!r} ({plan.source.unit} {earlier})",
        )
    speaker = _text_field(plan, line, values, cols.speaker).lower() if cols.speaker else ""
    if plan.first_text.get(external_id) != hash((text, speaker)):
        raise _fail(
            plan,
            line,
            cols.text,
            f"message {external_id!r} repeats {plan.source.unit} "
            f"{plan.seen_ids[external_id]} with different text or speaker",
        )
    labels = _row_labels(plan, line, values, labelable)
    plan.coded[(external_id, coder)] = line
    return Record(
        line,
        conversation,
        external_id,
        None,
        speaker,
        text,
        labelable,
        labels,
        {},
        {},
        coder,
        repeat=True,
    )


def _row_labels(plan: Plan, line: int, values: dict[str, Any], labelable: bool) -> tuple[str, ...]:
    """The row's labels, when a label column is mapped and the message is coded."""
    if not (plan.columns.label and labelable):
        return ()
    return _labels(plan, line, _get(plan, line, values, plan.columns.label))


def _as_int(plan: Plan, line: int, column: str, value: Any) -> int:
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
            try:
                number = float(value)
            except ValueError:
                number = math.nan
            if math.isfinite(number) and number.is_integer():
                return int(number)  # "3.0", as spreadsheets like to write turn numbers
            problem = f"got {value!r}"
    else:
        problem = f"got {_type_name(value)}"
    raise InputError(
        str(plan.source.path), line, column, f"must be an integer, {problem}", plan.source.unit
    )


def _labels(plan: Plan, line: int, value: Any) -> tuple[str, ...]:
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
    if plan.label_names is not None:
        items = [plan.label_names.key_for(v) or v for v in items]
    for item in items:
        if item not in plan.technique_keys:
            raise InputError(
                file,
                line,
                column,
                f"unknown technique {item!r}; the codebook has: "
                + ", ".join(sorted(plan.technique_keys))
                + " (a technique's name matches too; map other labels with --label-map FILE)",
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


def jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return {str(k): _jsonable_value(v) for k, v in values.items()}
