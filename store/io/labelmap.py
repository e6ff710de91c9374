"""How a file's label names become the codebook's technique keys on import.

A label is taken as it is when it is a technique key; else through `--label-map FILE` (CSV
or TOML, `file label -> technique key`); else it matches a technique's key or *name* without
regard to case ("Question" -> the technique named Question). Anything else stays unknown,
and the importer reports it with its file, line and column.
"""

from __future__ import annotations

import csv
import tomllib
from dataclasses import dataclass
from pathlib import Path

from store.domain import CodebookView
from store.errors import InputError


def read_label_map(path: Path, book: CodebookView) -> dict[str, str]:
    """`file label -> technique key` from a CSV (two columns, optional header row
    `label,technique`) or TOML (`"Question" = "open_question"`, at the top or under
    `[labels]`) file. Every target must be a technique key (or name) of `book`."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(
            str(path), None, None, f"cannot read the label map: {exc.strerror}"
        ) from None
    try:
        content = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(str(path), None, None, f"the label map is not UTF-8 text: {exc}") from None
    if path.suffix.lower() == ".toml":
        pairs = _toml_pairs(path, content)
    elif path.suffix.lower() in (".csv", ".tsv", ".txt"):
        pairs = _csv_pairs(path, content)
    else:
        raise InputError(
            str(path), None, None, "a label map is a .csv or .toml file (file label -> key)"
        )
    by_name = _by_name(book)
    mapping: dict[str, str] = {}
    for line, label, target in pairs:
        key = target if target in book.keys() else by_name.get(target.casefold())
        if key is None:
            raise InputError(
                str(path),
                line,
                None,
                f"{target!r} (for {label!r}) is not a technique of codebook '{book.key}'; "
                f"its keys: {', '.join(book.keys())}",
            )
        if mapping.get(label, key) != key:
            raise InputError(
                str(path), line, None, f"{label!r} is mapped twice ({mapping[label]}, {key})"
            )
        mapping[label] = key
    return mapping


def _toml_pairs(path: Path, content: str) -> list[tuple[int | None, str, str]]:
    try:
        data = tomllib.loads(content)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(str(path), None, None, f"not valid TOML: {exc}") from None
    table = data.get("labels", data) if isinstance(data.get("labels"), dict) else data
    pairs: list[tuple[int | None, str, str]] = []
    for label, target in table.items():
        if not isinstance(target, str):
            raise InputError(
                str(path), None, None, f"{label!r} must map to a technique key (a string)"
            )
        pairs.append((_toml_line(content, label), label.strip(), target.strip()))
    return pairs


def _toml_line(content: str, label: str) -> int | None:
    """The line a TOML key is on, for error messages (None when it cannot be told)."""
    for number, text in enumerate(content.splitlines(), start=1):
        stripped = text.lstrip()
        if stripped.startswith((f'"{label}"', f"'{label}'", f"{label} ", f"{label}=")):
            return number
    return None


def _csv_pairs(path: Path, content: str) -> list[tuple[int | None, str, str]]:
    pairs: list[tuple[int | None, str, str]] = []
    reader = csv.reader(content.splitlines())
    for row in reader:
        line = reader.line_num
        cells = [c.strip() for c in row]
        if not any(cells) or cells[0].startswith("#"):
            continue
        if len(cells) != 2 or not cells[0] or not cells[1]:
            raise InputError(
                str(path), line, None, f"expected `file label,technique key`, got {row!r}"
            )
        if not pairs and cells[1].casefold() in ("technique", "key", "technique key"):
            continue  # a header row
        pairs.append((line, cells[0], cells[1]))
    return pairs


def _by_name(book: CodebookView) -> dict[str, str]:
    """Case-folded technique names and keys -> key (keys win over another's name)."""
    found = {t.name.strip().casefold(): t.key for t in book.techniques}
    found.update({t.key.casefold(): t.key for t in book.techniques})
    return found


@dataclass(frozen=True)
class LabelNames:
    """Every spelling the importer accepts for a technique: keys and label-map entries as
    written, then the same and the techniques' names without regard to case."""

    exact: dict[str, str]
    folded: dict[str, str]

    @classmethod
    def of(cls, book: CodebookView, label_map: dict[str, str] | None = None) -> LabelNames:
        exact = {**(label_map or {}), **{k: k for k in book.keys()}}
        folded = {**_by_name(book), **{k.casefold(): v for k, v in (label_map or {}).items()}}
        return cls(exact, folded)

    def key_for(self, label: str) -> str | None:
        """The technique key a file's label stands for, or None."""
        return self.exact.get(label) or self.folded.get(label.casefold())


def label_names(book: CodebookView, label_map: Path | None = None) -> LabelNames:
    """The spellings an import accepts for `book`'s techniques, with `label_map` read in."""
    return LabelNames.of(book, read_label_map(label_map, book) if label_map else None)
