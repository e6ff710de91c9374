"""Stream rows out of CSV, JSONL and Parquet files, with the line each row came from."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from store.errors import InputError

FORMATS = ("csv", "jsonl", "parquet")
_EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
SNIFF_BYTES = 8192
CSV_FIELD_LIMIT = 256 * 1024 * 1024
"""The csv module's own limit (128 KiB) would turn a long message into a cryptic error; the
importer checks length itself, against `max_text_chars`."""


MAX_DEPTH = 32
"""Deepest nesting of lists and objects a JSONL row may have (metadata is flat in practice;
a line nested 100,000 deep would otherwise exhaust Python's stack)."""
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")

Row = dict[str, Any] | InputError
"""A row's values, or the problem that kept the row from being read (for --skip-bad)."""


@dataclass
class RowSource:
    """An opened input file: its format, its header (if it has one), and a row iterator."""

    path: Path
    format: str
    columns: list[str] | None
    total_bytes: int
    unit: str = "line"
    bytes_read: int = 0
    nul_rows: set[int] = field(default_factory=set)
    """Rows (by their first line) whose raw text holds a NUL byte, or a JSON `\\u0000`: the
    validator looks at every field of these, and only these, for one."""

    def rows(self) -> Iterator[tuple[int, Row]]:
        """Yield (line or row number, values or a row-level InputError).

        Problems of the whole file (not found, binary, bad header, bad UTF-8) are raised.
        """
        if self.format == "csv":
            return self._csv_rows()
        if self.format == "jsonl":
            return self._jsonl_rows()
        return self._parquet_rows()

    # -- formats -----------------------------------------------------------------------------

    def _lines(self) -> Iterator[tuple[int, str]]:
        """Decoded lines with their numbers; bad UTF-8 is reported with its line."""
        with self.path.open("rb") as fh:
            for number, raw in enumerate(fh, start=1):
                self.bytes_read += len(raw)
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise InputError(
                        str(self.path),
                        number,
                        None,
                        f"not valid UTF-8: byte 0x{raw[exc.start]:02x} at character "
                        f"{exc.start + 1} of the line (save the file as UTF-8)",
                    ) from None
                if number == 1 and line.startswith("\ufeff"):
                    line = line[1:]
                yield number, line

    def _csv_rows(self) -> Iterator[tuple[int, Row]]:
        csv.field_size_limit(CSV_FIELD_LIMIT)
        file = str(self.path)
        lines = self._lines()
        numbers: list[int] = []
        nul = [False]

        def feed() -> Iterator[str]:
            for number, line in lines:
                numbers.append(number)
                if "\x00" in line:
                    nul[0] = True
                yield line

        delimiter = "\t" if self.path.suffix.lower() == ".tsv" else ","
        reader = csv.reader(feed(), delimiter=delimiter, strict=True)
        try:
            header = next(reader)
        except StopIteration:
            raise InputError(file, None, None, "the file is empty") from None
        except csv.Error as exc:
            raise InputError(file, 1, None, f"bad CSV header: {exc}") from None
        header = [h.strip() for h in header]
        if nul[0]:
            raise InputError(file, 1, None, "the header contains a NUL byte")
        _check_header(file, header)
        self.columns = header
        width = len(header)
        while True:
            start = len(numbers) + 1
            try:
                record = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield start, InputError(file, start, None, f"malformed CSV: {exc}")
                continue
            if not record:
                continue
            if nul[0]:
                self.nul_rows.add(start)
                nul[0] = False
            if len(record) != width:
                problem = f"expected {width} fields as in the header, found {len(record)}"
                yield start, InputError(file, start, None, problem)
                continue
            yield start, dict(zip(header, record, strict=True))

    def _jsonl_rows(self) -> Iterator[tuple[int, Row]]:
        file = str(self.path)
        for number, line in self._lines():
            if not line.strip():
                continue
            problem = _too_deep(line)
            if problem:
                yield number, InputError(file, number, None, problem)
                continue
            try:
                value = json.loads(line)
            except RecursionError:
                yield number, InputError(file, number, None, _DEEP)
                continue
            except json.JSONDecodeError as exc:
                cut = "" if line.rstrip().endswith("}") else "; the line looks cut off"
                reason = exc.msg.removesuffix(" at")
                problem = f"invalid JSON: {reason} at character {exc.colno}{cut}"
                yield number, InputError(file, number, None, problem)
                continue
            if not isinstance(value, dict):
                problem = f"expected a JSON object, got {type(value).__name__}"
                yield number, InputError(file, number, None, problem)
                continue
            if "\\u0000" in line:
                self.nul_rows.add(number)
            if _SURROGATE_ESCAPE.search(line):
                bad = _unpaired_surrogate(value)
                if bad is not None:
                    yield number, InputError(file, number, bad[0], bad[1])
                    continue
            yield number, value

    def _parquet_rows(self) -> Iterator[tuple[int, Row]]:
        import pyarrow.parquet as pq

        file = str(self.path)
        try:
            reader = pq.ParquetFile(self.path)
        except Exception as exc:
            raise InputError(file, None, None, f"not a readable Parquet file: {exc}") from None
        number = 0
        total_rows = max(reader.metadata.num_rows, 1)
        for batch in reader.iter_batches(batch_size=10_000):
            for values in batch.to_pylist():
                number += 1
                yield number, values
            self.bytes_read = int(self.total_bytes * number / total_rows)


_DEEP = f"JSON nested more than {MAX_DEPTH} levels deep"


def _too_deep(line: str) -> str | None:
    """The nesting problem of a JSONL line, measured without recursion; None when fine."""
    if line.count("[") + line.count("{") <= MAX_DEPTH:
        return None
    depth = 0
    in_string = escaped = False
    for ch in line:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return _DEEP
        elif ch in "]}":
            depth -= 1
    return None


def _unpaired_surrogate(row: dict[str, Any]) -> tuple[str, str] | None:
    """(column, problem) for the first string holding half of a UTF-16 surrogate pair (a
    `\\ud800` escape JSON accepts but no text encoding can store), else None."""
    for key, value in row.items():
        stack: list[Any] = [key, value]
        while stack:
            item = stack.pop()
            if isinstance(item, str):
                found = _SURROGATE.search(item)
                if found:
                    code = ord(found.group())
                    return str(key).encode("utf-8", "backslashreplace").decode(), (
                        f"holds an unpaired surrogate \\u{code:04x}, which is not text "
                        "(fix the JSON escape)"
                    )
            elif isinstance(item, dict):
                stack.extend(item.keys())
                stack.extend(item.values())
            elif isinstance(item, list):
                stack.extend(item)
    return None


def _check_header(file: str, header: list[str]) -> None:
    seen: set[str] = set()
    for index, name in enumerate(header, start=1):
        if not name:
            raise InputError(file, 1, None, f"column {index} of the header has no name")
        if name in seen:
            raise InputError(file, 1, name, "the header names this column twice")
        seen.add(name)


def detect_format(path: Path, explicit: str | None = None) -> str:
    """csv | jsonl | parquet, from `explicit` or the file name."""
    if explicit:
        if explicit not in FORMATS:
            raise InputError(
                str(path),
                None,
                None,
                f"unknown format {explicit!r}; use one of {', '.join(FORMATS)}",
            )
        return explicit
    fmt = _EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(
            str(path),
            None,
            None,
            f"cannot tell the format from the extension {path.suffix!r}: use .csv, .jsonl or "
            ".parquet, or pass --format",
        )
    return fmt


def open_rows(path: Path, fmt: str | None = None) -> RowSource:
    """Open an input file for streaming, after checking it is what its name says."""
    file = str(path)
    if not path.exists():
        raise InputError(file, None, None, "no such file")
    if path.is_dir():
        raise InputError(file, None, None, "is a folder, not a file")
    fmt = detect_format(path, fmt)
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(SNIFF_BYTES)
    if fmt == "parquet":
        if head[:4] != b"PAR1":
            raise InputError(file, None, None, "not a Parquet file (missing PAR1 magic bytes)")
        import pyarrow.parquet as pq

        try:
            columns = list(pq.ParquetFile(path).schema_arrow.names)
        except Exception as exc:
            raise InputError(file, None, None, f"not a readable Parquet file: {exc}") from None
        return RowSource(path, fmt, columns, size, unit="row")
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise InputError(file, None, None, "is UTF-16 text; save it as UTF-8 (e.g. 'CSV UTF-8')")
    if b"\x00" in head:
        offset = head.index(b"\x00")
        raise InputError(
            file,
            None,
            None,
            f"looks like a binary file, not {fmt.upper()} text (NUL byte at offset {offset})",
        )
    return RowSource(path, fmt, None, size)
