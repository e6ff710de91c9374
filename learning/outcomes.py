"""Conversation-level outcomes: two groups to compare, or a number to correlate with."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from store import TechneError

MISSING = frozenset({"", "na", "n/a", "nan", "none", "null"})
"""Outcome values that mean "not known": such conversations are left out of the comparison."""


class InsightsError(TechneError):
    """An analysis that cannot run as asked (no model, an outcome field that does not fit)."""


@dataclass(frozen=True)
class Outcome:
    """A conversation-level outcome: two groups to compare, or a number to correlate with."""

    field: str
    kind: str
    """Either "binary" or "numeric"."""
    groups: tuple[str, str] | None
    """Binary: (reference, compared); differences are compared minus reference."""
    values: list[Any]
    """Per conversation: its group, its number, or None when it is left out."""


def read_outcome(
    meta: Sequence[dict[str, Any]], field: str, groups: tuple[str, str] | None = None
) -> Outcome:
    """The outcome `field` of each conversation's metadata. Two distinct values (or the two
    `groups` named) make it binary; numbers with more than two values make it numeric."""
    if all(field not in m for m in meta):
        fields = sorted({k for m in meta for k in m})
        raise InsightsError(
            f"no conversation has a metadata field {field!r} (fields: "
            f"{', '.join(fields) or 'none'}); import it with --conversation-field {field}"
        )
    text = [_text(m.get(field)) for m in meta]
    distinct = sorted({v for v in text if v is not None}, key=_sort_key)
    if groups is not None:
        absent = [g for g in groups if g not in distinct]
        if absent or groups[0] == groups[1]:
            raise InsightsError(
                f"--groups must name two different values of {field!r} "
                f"(it has {', '.join(distinct)}); {', '.join(absent) or groups[0]} is not one"
            )
        return Outcome(field, "binary", groups, [v if v in groups else None for v in text])
    if len(distinct) < 2:
        raise InsightsError(f"outcome {field!r} has {len(distinct)} value(s): nothing to compare")
    if len(distinct) == 2:
        return Outcome(field, "binary", (distinct[0], distinct[1]), text)
    if all(_number(v) is not None for v in distinct):
        return Outcome(field, "numeric", None, [None if v is None else _number(v) for v in text])
    shown = ", ".join(distinct[:8]) + (", …" if len(distinct) > 8 else "")
    raise InsightsError(
        f"outcome {field!r} has {len(distinct)} values ({shown}): use a binary or numeric "
        "field, or compare two of its values with --groups A,B"
    )


def outcome_fields(meta: Sequence[dict[str, Any]]) -> list[str]:
    """Metadata fields usable as an outcome as they are (binary or numeric), sorted."""
    usable = []
    for name in sorted({k for m in meta for k in m}):
        try:
            read_outcome(meta, name)
        except InsightsError:
            continue
        usable.append(name)
    return usable


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return None if text.lower() in MISSING else text


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if np.isfinite(value) else None


def _sort_key(text: str) -> tuple[int, float, str]:
    number = _number(text)
    return (0, number, text) if number is not None else (1, 0.0, text)
