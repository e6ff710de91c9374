"""Reading one cell of an import row: text, integers, labels, JSON-safe metadata."""

from __future__ import annotations

import math
from typing import Any

from store.errors import InputError
from store.io.plan import Plan

MISSING_LABELS = frozenset({"", "n/a", "na", "nan", "none", "null"})
"""Label cells that mean 'no label' (AnnoMI writes n/a on client turns)."""


_MISSING = object()


def fail(plan: Plan, line: int, column: str | None, problem: str) -> InputError:
    """The InputError for `problem` in a cell of this plan's file."""
    return InputError(str(plan.source.path), line, column, problem, plan.source.unit)


def get(plan: Plan, line: int, values: dict[str, Any], column: str) -> Any:
    """The cell of `column`; a row without that field is an InputError."""
    value = values.get(column, _MISSING)
    if value is _MISSING:
        raise fail(plan, line, column, "missing field")
    return value


def text_field(plan: Plan, line: int, values: dict[str, Any], column: str) -> str:
    """The cell of `column` as stripped, non-empty text."""
    value = get(plan, line, values, column)
    if type(value) is str:  # the common case, kept cheap: this runs millions of times
        text = value.strip()
        if text:
            return text
    return as_text(plan, line, column, value)


def as_text(plan: Plan, line: int, column: str, value: Any, *, empty_ok: bool = False) -> str:
    """A string or integer cell as stripped text (empty only with `empty_ok`)."""
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
                f"must be a string or integer, got {type_name(value)}",
                plan.source.unit,
            )
    text = str(value).strip()
    if not text and not empty_ok:
        raise InputError(str(plan.source.path), line, column, "is empty", plan.source.unit)
    return text


def as_int(plan: Plan, line: int, column: str, value: Any) -> int:
    """An integer cell: ints, integral floats and strings such as "3" or "3.0"."""
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
        problem = f"got {type_name(value)}"
    raise InputError(
        str(plan.source.path), line, column, f"must be an integer, {problem}", plan.source.unit
    )


def cell_labels(plan: Plan, line: int, value: Any) -> tuple[str, ...]:
    """A label cell as technique keys: split, mapped (--label-map) and checked against the
    codebook; empty for a missing label ("n/a", null)."""
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
            f"label must be a string or list of strings, got {type_name(value)}",
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


def type_name(value: Any) -> str:
    """How a value's type is named in a message about a bad cell."""
    return {dict: "an object", list: "a list", type(None): "null"}.get(
        type(value), type(value).__name__
    )


def jsonable_value(value: Any) -> Any:
    """A cell as JSON can store it (non-finite floats become null, others strings)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, list | tuple):
        return [jsonable_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable_value(v) for k, v in value.items()}
    return str(value)


def jsonable(values: dict[str, Any]) -> dict[str, Any]:
    """A whole row as JSON can store it (for the rejects file)."""
    return {str(k): jsonable_value(v) for k, v in values.items()}
