"""Bad input: each broken file raises an InputError naming file, line, column and problem, and
leaves the store byte-for-byte unchanged (row counts plus hashes of the events and messages).

Every test starts from a store that already holds a small good import (`repo` fixture), so
"unchanged" means more than "still empty". Small files live in tests/data/bad/ (see its
README); big and binary ones are generated in tmp_path.
"""

from __future__ import annotations

import csv
import gzip
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from store import Repository, StoreError
from store.errors import InputError
from store.io import ColumnMap, import_file
from store.io.importer import BATCH_ROWS
from store.io.readers import SNIFF_BYTES

BAD = Path(__file__).resolve().parent / "data" / "bad"
GOOD_CSV = BAD / "good.csv"
COLS = ColumnMap(
    text="text",
    speaker="speaker",
    conversation="conversation",
    order="turn",
    id="id",
    label="label",
    annotator="annomi",
    labelable_speakers=("therapist",),
    conversation_fields=("topic",),
)
CODEBOOK = "other, question, reflection, therapist_input"
UNKNOWN = f"unknown technique 'empathy'; the codebook has: {CODEBOOK}"
HAS = "no such column; the file has: id, conversation, turn, text, label, topic"
B2_TOPIC = "must be constant within conversation 'b2': 'alcohol' before, 'smoking' here"
FIVE_MB = 5_000_000


@pytest.fixture
def repo(annomi_repo: Repository) -> Repository:
    """The AnnoMI store after the good baseline import: 3 conversations, 12 messages, 6 labels."""
    report = import_file(annomi_repo, GOOD_CSV, COLS)
    assert (report.messages_added, report.conversations_added, report.labels_added) == (12, 3, 6)
    return annomi_repo


def assert_rejected(
    repo: Repository,
    path: Path,
    line: int | None,
    column: str | None,
    phrase: str,
    *,
    unit: str = "line",
    cols: ColumnMap = COLS,
    **kwargs: Any,
) -> InputError:
    """Import `path`, expect the named InputError, and check the store did not change."""
    before = repo.fingerprint()
    assert before["counts"]["messages"] > 0
    with pytest.raises(InputError) as info:
        import_file(repo, path, cols, **kwargs)
    err = info.value
    assert (err.file, err.line, err.column) == (str(path), line, column), str(err)
    assert phrase in err.problem, str(err)
    message = str(err)
    assert message.startswith(str(path)) and message.endswith(err.problem)
    if line is not None:
        assert err.unit == unit and f", {unit} {line}" in message
    if column is not None:
        assert f"column '{column}'" in message
    assert repo.fingerprint() == before
    return err


# -- committed corpus: the bad row is line 8 of 10, after seven good ones --------------------


def case(name: str, line: int | None, column: str | None, phrase: str) -> Any:
    return pytest.param(name, line, column, phrase, id=name)


# fmt: off
CSV_CASES = [
    case("bad_utf8.csv", 8, None, "not valid UTF-8: byte 0xe9 at character 38"),
    case("missing_column.csv", 1, "speaker", HAS),
    case("duplicate_header.csv", 1, "text", "the header names this column twice"),
    case("duplicate_id.csv", 8, "id", "duplicate message id 'b1.1' (first on line 3)"),
    case("empty_text.csv", 8, "text", "message text is empty"),
    case("blank_text.csv", 8, "text", "message text is empty"),
    case("order_not_int.csv", 8, "turn", "must be an integer, got 'abc'"),
    case("unknown_label.csv", 8, "label", UNKNOWN),
    case("two_labels.csv", 8, "label", "2 labels ['question', 'reflection'] but the codebook"),
    case("wrong_field_count.csv", 8, None, "expected 7 fields as in the header, found 6"),
    case("unclosed_quote.csv", 8, None, "malformed CSV: unexpected end of data"),
    case("topic_changes.csv", 8, "topic", B2_TOPIC),
    case("empty.csv", None, None, "the file is empty"),
    case("header_only.csv", None, None, "the file has no rows to import"),
    case("position_clash.csv", 8, "turn",
         "conversation 'b2' already has a message at position 0 (line 7)"),
    case("position_taken.csv", 8, "turn",
         "conversation 'g1' already has message 'g1.0' at position 0"),
]

JSONL_CASES = [
    case("bad_utf8.jsonl", 8, None, "not valid UTF-8: byte 0xe9"),
    case("missing_field.jsonl", 8, "speaker", "missing field"),
    case("duplicate_id.jsonl", 8, "id", "duplicate message id 'b1.1' (first on line 2)"),
    case("empty_text.jsonl", 8, "text", "message text is empty"),
    case("blank_text.jsonl", 8, "text", "message text is empty"),
    case("text_number.jsonl", 8, "text", "message text must be a string, got int"),
    case("text_object.jsonl", 8, "text", "message text must be a string, got an object"),
    case("text_null.jsonl", 8, "text", "message text must be a string, got null"),
    case("nul_text.jsonl", 8, "text", "message text contains a NUL byte"),
    case("order_string.jsonl", 8, "turn", "must be an integer, got 'abc'"),
    case("order_bool.jsonl", 8, "turn", "must be an integer, got a boolean"),
    case("order_fraction.jsonl", 8, "turn", "must be an integer, got 1.5"),
    case("speaker_object.jsonl", 8, "speaker", "must be a string or integer, got an object"),
    case("id_null.jsonl", 8, "id", "must be a string or integer, got null"),
    case("label_number.jsonl", 8, "label", "label must be a string or list of strings, got int"),
    case("label_unknown.jsonl", 8, "label", UNKNOWN),
    case("topic_changes.jsonl", 8, "topic", B2_TOPIC),
    case("not_object.jsonl", 8, None, "expected a JSON object, got list"),
    case("broken_json.jsonl", 8, None, "invalid JSON: Expecting ',' delimiter"),
    case("truncated.jsonl", 10, None, "invalid JSON"),
    case("empty.jsonl", None, None, "the file has no rows to import"),
]
# fmt: on


@pytest.mark.parametrize(("name", "line", "column", "phrase"), CSV_CASES + JSONL_CASES)
def test_bad_file_is_refused_and_store_unchanged(
    repo: Repository, name: str, line: int | None, column: str | None, phrase: str
) -> None:
    """A committed bad CSV/JSONL file raises the named error and changes nothing."""
    assert_rejected(repo, BAD / name, line, column, phrase)


def test_corpus_is_intact() -> None:
    """The committed corpus is small and its bad bytes survived (no editor re-saved them)."""
    for path in BAD.iterdir():
        assert path.stat().st_size < 20_000, path
    for name in ("bad_utf8.csv", "bad_utf8.jsonl"):
        lines = (BAD / name).read_bytes().splitlines()
        assert len(lines) == 9 + name.endswith(".jsonl") + name.endswith(".csv")
        assert b"caf\xe9 " in lines[7]
        with pytest.raises(UnicodeDecodeError):
            lines[7].decode("utf-8")
    assert not (BAD / "truncated.jsonl").read_bytes().endswith(b"\n")
    assert (BAD / "empty.csv").stat().st_size == (BAD / "empty.jsonl").stat().st_size == 0


# -- generated files: synthetic rows ---------------------------------------------------------


Rows = list[dict[str, Any]]
Case = tuple[Path, int | None, str | None, str]
"""A generated bad file: path, expected line (or row), column and a phrase of the problem."""


def synthetic(n: int, prefix: str = "t", pad: int = 0) -> Rows:
    """`n` good rows in conversations of ten turns, therapist turns labelled."""
    labels = ("reflection", "question", "therapist_input", "other")
    rows = []
    for i in range(n):
        therapist = i % 2 == 0
        rows.append(
            {
                "id": f"{prefix}{i}",
                "conversation": f"{prefix}c{i // 10}",
                "turn": i % 10,
                "speaker": "therapist" if therapist else "client",
                "text": f"Turn {i} of a synthetic session." + " x" * pad,
                "label": labels[i // 2 % 4] if therapist else None,
                "topic": f"topic {i // 10 % 3}",
            }
        )
    return rows


NINE = synthetic(9)


def write_csv(path: Path, rows: Rows) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "n/a" if v is None else v for k, v in row.items()})
    return path


def write_jsonl(path: Path, rows: Rows) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def write_parquet(path: Path, rows: Rows) -> Path:
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def with_row(rows: Rows, index: int, **changes: Any) -> Rows:
    rows = [dict(r) for r in rows]
    rows[index].update(changes)
    return rows


def with_column(rows: Rows, name: str, fn: Callable[[Any], Any]) -> Rows:
    return [{**r, name: fn(r[name])} for r in rows]


def huge_text_csv(tmp: Path) -> Case:
    path = write_csv(tmp / "huge.csv", with_row(NINE, 6, text="x" * FIVE_MB))
    limit = "over the limit of 100,000 (raise [import] max_text_chars in techne.toml)"
    return path, 8, "text", f"message text is 5,000,000 characters, {limit}"


def huge_text_jsonl(tmp: Path) -> Case:
    rows = with_row(NINE, 6, text="é" * FIVE_MB)
    return write_jsonl(tmp / "huge.jsonl", rows), 7, "text", "message text is 5,000,000 characters"


def nul_after_sniff_window(tmp: Path) -> Case:
    path = write_csv(tmp / "late_nul.csv", with_row(synthetic(9, pad=800), 6, text="a\x00b"))
    assert path.read_bytes().index(b"\x00") > SNIFF_BYTES
    return path, 8, "text", "message text contains a NUL byte, which databases cannot store"


def binary(name: str, data: bytes) -> Callable[[Path], Case]:
    def build(tmp: Path) -> Case:
        path = tmp / name
        path.write_bytes(data)
        fmt, offset = path.suffix[1:].upper(), data.index(b"\x00")
        phrase = f"looks like a binary file, not {fmt} text (NUL byte at offset {offset})"
        return path, None, None, phrase

    return build


def utf16_case(tmp: Path) -> Case:
    """Excel's 'Unicode text' export: UTF-16 with a byte-order mark."""
    path = tmp / "excel.csv"
    path.write_bytes(UTF16)
    return path, None, None, "is UTF-16 text; save it as UTF-8"


GZIP = gzip.compress(GOOD_CSV.read_bytes(), mtime=0)
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4
RANDOM = random.Random(20240601).randbytes(4096)
UTF16 = GOOD_CSV.read_text(encoding="utf-8").encode("utf-16")


def pq_case(name: str, rows: Rows, line: int | None, column: str | None, phrase: str) -> Any:
    def build(tmp: Path) -> Case:
        return write_parquet(tmp / f"{name}.parquet", rows), line, column, phrase

    return pytest.param(build, "row", id=f"parquet-{name}")


NO_SPEAKER = [{k: v for k, v in r.items() if k != "speaker"} for r in NINE]
NOT_STR = "message text must be a string, got"
NOT_INT = "must be an integer, got"
TC0_TOPIC = "must be constant within conversation 'tc0': 'topic 0' before, 'elsewhere' here"

# fmt: off
PARQUET_CASES = [  # a Parquet column has one type: a wrongly typed column fails on row 1
    pq_case("missing_column", NO_SPEAKER, None, "speaker", HAS),
    pq_case("text_int", with_column(NINE, "text", lambda _: 42), 1, "text", f"{NOT_STR} int"),
    pq_case("text_null", with_row(NINE, 6, text=None), 7, "text", f"{NOT_STR} null"),
    pq_case("empty_text", with_row(NINE, 6, text=" "), 7, "text", "message text is empty"),
    pq_case("order_string", with_row(with_column(NINE, "turn", str), 6, turn="abc"),
            7, "turn", f"{NOT_INT} 'abc'"),
    pq_case("order_fraction", with_row(with_column(NINE, "turn", float), 6, turn=1.5),
            7, "turn", f"{NOT_INT} 1.5"),
    pq_case("order_null", with_row(NINE, 6, turn=None), 7, "turn", f"{NOT_INT} null"),
    pq_case("order_bool", with_column(NINE, "turn", bool), 1, "turn", f"{NOT_INT} a boolean"),
    pq_case("label_int", with_column(NINE, "label", lambda v: None if v is None else 3),
            1, "label", "label must be a string or list of strings, got int"),
    pq_case("speaker_bool", with_column(NINE, "speaker", lambda v: v == "therapist"),
            1, "speaker", "must be a string or integer, got bool"),
    pq_case("duplicate_id", with_row(NINE, 6, id="t1"),
            7, "id", "duplicate message id 't1' (first on row 2)"),
    pq_case("topic_changes", with_row(NINE, 6, topic="elsewhere"), 7, "topic", TC0_TOPIC),
]
# fmt: on


def not_parquet(tmp: Path) -> Case:
    path = tmp / "really.parquet"
    path.write_bytes(GOOD_CSV.read_bytes())
    return path, None, None, "not a Parquet file (missing PAR1 magic bytes)"


def truncated_parquet(tmp: Path) -> Case:
    data = write_parquet(tmp / "whole.parquet", NINE).read_bytes()
    path = tmp / "cut.parquet"
    path.write_bytes(data[: len(data) // 2])
    return path, None, None, "not a readable Parquet file"


GENERATED = [
    pytest.param(huge_text_csv, "line", id="csv-5MB-message"),
    pytest.param(huge_text_jsonl, "line", id="jsonl-5MB-message"),
    pytest.param(nul_after_sniff_window, "line", id="csv-NUL-after-sniff-window"),
    pytest.param(binary("gzip.csv", GZIP), "line", id="binary-gzip-as-csv"),
    pytest.param(binary("image.csv", PNG), "line", id="binary-png-as-csv"),
    pytest.param(binary("noise.jsonl", RANDOM), "line", id="binary-random-as-jsonl"),
    pytest.param(
        utf16_case,
        "line",
        id="utf16-csv",
    ),
    pytest.param(not_parquet, "row", id="csv-named-parquet"),
    pytest.param(truncated_parquet, "row", id="truncated-parquet"),
    *PARQUET_CASES,
]


@pytest.mark.parametrize(("build", "unit"), GENERATED)
def test_generated_bad_file_is_refused(
    repo: Repository, tmp_path: Path, build: Callable[[Path], Case], unit: str
) -> None:
    """A generated bad file (huge, binary, Parquet) raises the named error and changes nothing."""
    path, line, column, phrase = build(tmp_path)
    assert_rejected(repo, path, line, column, phrase, unit=unit)


def test_good_synthetic_files_import(repo: Repository, tmp_path: Path) -> None:
    """Control: the synthetic rows the generated cases break import cleanly in every format."""
    writers = {"csv": write_csv, "jsonl": write_jsonl, "parquet": write_parquet}
    for fmt, writer in writers.items():
        rows = synthetic(9, prefix=f"ok-{fmt}-")
        report = import_file(repo, writer(tmp_path / f"ok.{fmt}", rows), COLS)
        assert (report.messages_added, report.labels_added, report.rejected) == (9, 5, 0)


# -- a bad row after a whole batch was written inside the transaction ------------------------

N_BIG = BATCH_ROWS + 1_000


def big_case(fmt: str, kind: str, tmp: Path) -> tuple[Path, int, str | None, str, str]:
    rows = synthetic(N_BIG)
    first = {"csv": 2, "jsonl": 1, "parquet": 1}[fmt]
    unit = "row" if fmt == "parquet" else "line"
    if kind == "empty_text":
        rows.append({**synthetic(1, prefix="late")[0], "text": "  "})
        column, phrase = "text", "message text is empty"
    else:
        rows.append({**synthetic(1, prefix="late")[0], "id": rows[0]["id"]})
        column, phrase = "id", f"duplicate message id 't0' (first on {unit} {first})"
    writer = {"csv": write_csv, "jsonl": write_jsonl, "parquet": write_parquet}[fmt]
    return writer(tmp / f"big.{fmt}", rows), first + N_BIG, column, phrase, unit


@pytest.mark.parametrize("kind", ["empty_text", "duplicate_id"])
@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_bad_row_after_first_batch_rolls_back(
    repo: Repository, tmp_path: Path, fmt: str, kind: str
) -> None:
    """A bad row past BATCH_ROWS undoes the batch already written in the same transaction."""
    path, line, column, phrase, unit = big_case(fmt, kind, tmp_path)
    written: list[tuple[int, int]] = []
    assert_rejected(
        repo, path, line, column, phrase, unit=unit, progress=lambda a, b: written.append((a, b))
    )
    assert written, "no batch was written before the bad row"


def test_truncated_jsonl_after_first_batch_rolls_back(repo: Repository, tmp_path: Path) -> None:
    """A JSONL file cut mid-line after 6,000 good lines changes nothing."""
    path = write_jsonl(tmp_path / "big.jsonl", synthetic(N_BIG))
    with path.open("a", encoding="utf-8") as fh:
        fh.write('{"id": "late", "conversation": "late", "text": "cut off he')
    written: list[tuple[int, int]] = []
    assert_rejected(
        repo, path, N_BIG + 1, None, "invalid JSON", progress=lambda a, b: written.append((a, b))
    )
    assert written


def test_position_taken_in_store_after_first_batch_rolls_back(
    repo: Repository, tmp_path: Path
) -> None:
    """A new id at a (conversation, turn) the store holds, in the second batch, changes nothing."""
    rows = synthetic(N_BIG)
    rows.append({**rows[-1], "id": "late", "conversation": "g1", "turn": 0, "topic": "smoking"})
    path = write_csv(tmp_path / "taken.csv", rows)
    written: list[tuple[int, int]] = []
    phrase = "conversation 'g1' already has message 'g1.0' at position 0"
    assert_rejected(
        repo, path, N_BIG + 2, "turn", phrase, progress=lambda a, b: written.append((a, b))
    )
    assert written


# -- --skip-bad --rejects FILE ---------------------------------------------------------------

SKIP_CASES = [
    pytest.param(
        "mixed.csv",
        [
            (4, "text", "m1.2", "message text is empty"),
            (5, "turn", "m1.3", "must be an integer, got 'three'"),
            (6, "label", "m1.4", "unknown technique 'empathy'"),
            (8, "id", "m1.1", "duplicate message id 'm1.1' (first on line 3)"),
            (9, "text", "g1.0", "message 'g1.0' is already in the store with different text"),
            (11, "topic", "m1.8", "must be constant within conversation 'm1': 'sleep' before"),
        ],
        ["m1.0", "m1.1", "m1.5", "m1.7"],
        id="csv",
    ),
    pytest.param(
        "mixed.jsonl",
        [
            (2, "text", "n1.1", "message text must be a string, got int"),
            (3, "turn", "n1.2", "must be an integer, got a boolean"),
            (5, "label", "n1.4", "label must be a string or list of strings, got int"),
            (6, "text", "n1.5", "message text contains a NUL byte"),
            (8, "speaker", "n1.7", "missing field"),
        ],
        ["n1.0", "n1.3", "n1.6"],
        id="jsonl",
    ),
]


@pytest.mark.parametrize(("name", "expected", "kept"), SKIP_CASES)
def test_skip_bad_imports_good_rows_and_writes_rejects(
    repo: Repository,
    tmp_path: Path,
    name: str,
    expected: list[tuple[int, str, str, str]],
    kept: list[str],
) -> None:
    """--skip-bad imports the valid rows and writes each bad one, with its reason, to --rejects."""
    before = repo.fingerprint()["counts"]
    rejects = tmp_path / "rejects.jsonl"
    path = BAD / name
    report = import_file(repo, path, COLS, skip_bad=True, rejects_path=rejects)

    assert report.rows == len(expected) + len(kept)
    assert report.rejected == len(expected)
    added = (report.messages_added, report.conversations_added, report.labels_added)
    assert added == (len(kept), 1, 2)
    after = repo.fingerprint()["counts"]
    assert after["messages"] == before["messages"] + len(kept)
    assert after["events"] == before["events"] + 2
    assert after["conversations"] == before["conversations"] + 1
    for ext in kept:
        assert repo.message(ext).text
    for ext in {e[2] for e in expected} - set(kept) - {"g1.0"}:
        with pytest.raises(StoreError):
            repo.message(ext)
    assert repo.message("g1.0").text.startswith("Hi, thanks for coming in")

    written = [json.loads(line) for line in rejects.read_text(encoding="utf-8").splitlines()]
    assert len(written) == report.rejected
    got = sorted((r["line"], r["column"], r["row"]["id"], r["problem"]) for r in written)
    assert [g[:3] for g in got] == [e[:3] for e in expected]
    for (*_, phrase), (*_, problem) in zip(expected, got, strict=True):
        assert phrase in problem
    assert {r["file"] for r in written} == {str(path)}


@pytest.mark.parametrize(
    ("name", "good_rows", "line", "phrase"),
    [
        ("truncated.jsonl", 9, 10, "invalid JSON"),
        ("broken_json.jsonl", 9, 8, "invalid JSON: Expecting ',' delimiter"),
        ("not_object.jsonl", 9, 8, "expected a JSON object, got list"),
        ("wrong_field_count.csv", 8, 8, "expected 7 fields as in the header, found 6"),
    ],
)
def test_skip_bad_also_skips_unparseable_lines(
    repo: Repository, tmp_path: Path, name: str, good_rows: int, line: int, phrase: str
) -> None:
    """--skip-bad rejects a line that does not parse and imports the rest."""
    rejects = tmp_path / "rejects.jsonl"
    report = import_file(repo, BAD / name, COLS, skip_bad=True, rejects_path=rejects)
    assert (report.messages_added, report.rejected) == (good_rows, 1)
    (written,) = [json.loads(x) for x in rejects.read_text(encoding="utf-8").splitlines()]
    assert (written["file"], written["line"], written["column"]) == (str(BAD / name), line, None)
    assert phrase in written["problem"]


@pytest.mark.parametrize(
    ("name", "line", "phrase"),
    [
        ("bad_utf8.csv", 8, "not valid UTF-8"),
        ("bad_utf8.jsonl", 8, "not valid UTF-8"),
        ("missing_column.csv", 1, "no such column"),
    ],
)
def test_skip_bad_still_refuses_a_broken_file(
    repo: Repository, tmp_path: Path, name: str, line: int, phrase: str
) -> None:
    """Whole-file problems (bad encoding, missing column) refuse the file even with --skip-bad."""
    rejects = tmp_path / "rejects.jsonl"
    column = "speaker" if name == "missing_column.csv" else None
    assert_rejected(repo, BAD / name, line, column, phrase, skip_bad=True, rejects_path=rejects)
    assert not rejects.exists()


# -- ids already in the store ----------------------------------------------------------------


def test_known_id_with_different_text_is_refused(repo: Repository) -> None:
    """An id the store has, with other text, is an error at its line and changes nothing."""
    assert_rejected(
        repo,
        BAD / "conflict.csv",
        8,
        "text",
        "message 'g2.2' is already in the store with different text",
    )


@pytest.mark.parametrize("name", ["good.csv", "good.jsonl"])
def test_reimporting_the_good_file_adds_nothing(repo: Repository, name: str) -> None:
    """Importing the baseline again (as CSV or JSONL) finds every message and adds nothing."""
    before = repo.fingerprint()
    report = import_file(repo, BAD / name, COLS)
    assert (report.rows, report.messages_existing) == (12, 12)
    assert (report.messages_added, report.conversations_added, report.labels_added) == (0, 0, 0)
    assert repo.fingerprint() == before


def test_refused_file_with_new_annotator_changes_nothing(repo: Repository) -> None:
    """A refused import under a new --annotator name leaves the annotators table unchanged too."""
    cols = ColumnMap(**{**COLS.__dict__, "annotator": "newcomer"})
    assert_rejected(repo, BAD / "unknown_label.csv", 8, "label", UNKNOWN, cols=cols)
