"""Row validation for imports: ids, positions, coders, labels; one InputError per problem."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from store.errors import InputError
from store.io.cells import (
    as_int,
    cell_labels,
    fail,
    get,
    jsonable,
    jsonable_value,
    text_field,
    type_name,
)
from store.io.plan import ColumnMap, Plan, Record, Reject
from store.io.readers import RowSource
from store.names import name_problem


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


def _validate(plan: Plan, line: int, values: dict[str, Any]) -> Record:
    cols = plan.columns
    raw_text = get(plan, line, values, cols.text)
    if type(raw_text) is not str:
        raise fail(
            plan, line, cols.text, f"message text must be a string, got {type_name(raw_text)}"
        )
    if not raw_text.strip():
        raise fail(plan, line, cols.text, "message text is empty")
    if len(raw_text) > plan.max_text_chars:
        raise fail(
            plan,
            line,
            cols.text,
            f"message text is {len(raw_text):,} characters, over the limit of "
            f"{plan.max_text_chars:,} (raise [import] max_text_chars in techne.toml)",
        )
    if "\x00" in raw_text:
        raise fail(
            plan, line, cols.text, "message text contains a NUL byte, which databases cannot store"
        )

    if line in plan.source.nul_rows:
        _refuse_nul(plan, line, values)

    speaker = text_field(plan, line, values, cols.speaker).lower() if cols.speaker else ""
    labelable = not cols.labelable_speakers or speaker in cols.labelable_speakers

    position: int | None = None
    if cols.order:
        value = get(plan, line, values, cols.order)
        position = value if type(value) is int else as_int(plan, line, cols.order, value)

    conversation = ""
    if cols.conversation:
        conversation = cols.id_prefix + text_field(plan, line, values, cols.conversation)
    if cols.id:
        external_id = cols.id_prefix + text_field(plan, line, values, cols.id)
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
        coder = text_field(plan, line, values, cols.annotator_column)
        if cols.annotator:
            coder = f"{cols.annotator}-{coder}"
        problem = name_problem(coder)
        if problem is not None:
            raise fail(plan, line, cols.annotator_column, f"annotator name {problem}")
    first = plan.seen_ids.get(external_id)
    if first is not None and coder is not None:
        return _repeat(plan, line, values, raw_text, external_id, conversation, coder, labelable)
    if first is not None:
        raise fail(
            plan,
            line,
            cols.id or cols.order,
            f"duplicate message id {external_id!r} (first on {plan.source.unit} {first})",
        )

    if cols.id and cols.order:
        clash = plan.seen_positions.get((conversation, position))  # type: ignore[arg-type]
        if clash is not None:
            raise fail(
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
        value = jsonable_value(get(plan, line, values, name))
        if known_meta is not None and name in known_meta and known_meta[name] != value:
            raise fail(
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
        meta = {k: jsonable_value(v) for k, v in values.items() if k not in mapped}

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
                raise fail(plan, line, key, "contains a NUL byte, which databases cannot store")
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
        raise fail(
            plan,
            line,
            cols.annotator_column,
            f"coder {coder!r} already coded message {external_id!r} ({plan.source.unit} {earlier})",
        )
    speaker = text_field(plan, line, values, cols.speaker).lower() if cols.speaker else ""
    if plan.first_text.get(external_id) != hash((text, speaker)):
        raise fail(
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
    return cell_labels(plan, line, get(plan, line, values, plan.columns.label))
