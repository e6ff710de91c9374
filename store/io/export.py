"""Export gold datasets (JSONL, CSV, Parquet, Hugging Face folder) with a dataset card."""

from __future__ import annotations

import csv
import json
from collections import Counter, deque
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from store.errors import StoreError
from store.io.atomic import atomic_path, atomic_writer, check_target
from store.io.card import render_card
from store.io.options import ExportOptions, ExportReport
from store.labels import GOLD_LEVELS, resolve
from store.splits import grouped_split

if TYPE_CHECKING:  # SQLAlchemy loads with the repository, not with this module
    from store.repository import Repository

EXPORT_FORMATS = ("jsonl", "csv", "parquet", "hf")
SPLIT_NAMES = ("train", "dev", "test")
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def format_for(path: Path, explicit: str | None) -> str:
    """The export format from --format or the output name (a name without suffix: hf)."""
    if explicit:
        if explicit not in EXPORT_FORMATS:
            raise StoreError(
                f"unknown export format {explicit!r}; use one of {', '.join(EXPORT_FORMATS)}"
            )
        return explicit
    suffix = path.suffix.lower()
    guessed = {".jsonl": "jsonl", ".csv": "csv", ".parquet": "parquet", "": "hf"}.get(suffix)
    if guessed is None:
        raise StoreError(f"{path}: cannot tell the format from {suffix!r}; pass --format")
    return guessed


def gold_rows(repo: Repository, options: ExportOptions) -> list[dict[str, Any]]:
    """One row per labelable message with a gold label, in conversation order."""
    if options.gold not in GOLD_LEVELS:
        raise StoreError(f"--gold must be one of {', '.join(GOLD_LEVELS)}, got {options.gold!r}")
    states = {s.message_id: s for s in repo.iter_states()}
    tags = repo.model_tags()
    rows: list[dict[str, Any]] = []
    window: deque[dict[str, str]] = deque(maxlen=max(options.context_turns, 0) or None)
    conversation = None
    for msg in repo.iter_messages():
        if msg.conversation_id != conversation:
            conversation = msg.conversation_id
            window.clear()
        state = states.get(msg.id)
        gold = resolve(state, options.gold) if state is not None and msg.labelable else None
        if gold is not None:
            rows.append(
                {
                    "message_id": msg.external_id,
                    "conversation_id": msg.conversation_external_id,
                    "position": msg.position,
                    "speaker": msg.speaker,
                    "text": msg.text,
                    "context": list(window) if options.context_turns > 0 else [],
                    "label": ";".join(gold.labels),
                    "labels": list(gold.labels),
                    "gold_source": gold.source,
                    "annotators": list(gold.annotators),
                    "adjudicator": gold.adjudicator,
                    "coders": [
                        {"annotator": name, "label": ";".join(labels)}
                        for name, labels in sorted(state.coder_labels.items())
                    ]
                    if state
                    else [],
                    "n_annotators": len(gold.annotators),
                    "agreement": gold.agreement,
                    "event_count": state.event_count if state else 0,
                    "model_version": tags.get(state.suggested_by)
                    if state and state.suggested_by
                    else None,
                }
            )
        if options.context_turns > 0:
            window.append({"speaker": msg.speaker, "text": msg.text})
    add_conversation_fields(repo, rows)
    if options.split is not None:
        sizes = Counter(r["conversation_id"] for r in rows)
        assignment = grouped_split(sizes, options.split, SPLIT_NAMES, options.seed)
        for row in rows:
            row["split"] = assignment[row["conversation_id"]]
    return rows


CONVERSATION_FIELDS = "conversation_fields"
"""The row key of a message's conversation metadata (`--conversation-field` on import, e.g.
AnnoMI's mi_quality and topic): an object in JSONL, a struct in Parquet and Hugging Face,
one `conversation.NAME` column per field in CSV."""


def add_conversation_fields(repo: Repository, rows: list[dict[str, Any]]) -> None:
    """Give every row its conversation's fields: the union over the exported conversations,
    None where a conversation lacks one."""
    wanted = {r["conversation_id"] for r in rows}
    meta = {ext: m for _, ext, m in repo.iter_conversations() if ext in wanted}
    names = sorted({k for ext in wanted for k in meta.get(ext, {})})
    for row in rows:
        fields = meta.get(row["conversation_id"], {})
        row[CONVERSATION_FIELDS] = {name: fields.get(name) for name in names}


def _conversation_type(rows: list[dict[str, Any]]) -> Any:
    """The Arrow struct of the conversation fields: each field's own type when its values
    share one (text, integer, number, true/false), else text."""
    import pyarrow as pa

    names = list(rows[0][CONVERSATION_FIELDS]) if rows else []
    fields = []
    for name in names:
        kinds = {type(r[CONVERSATION_FIELDS][name]) for r in rows} - {type(None)}
        if kinds == {bool}:
            kind = pa.bool_()
        elif kinds == {int}:
            kind = pa.int64()
        elif kinds and kinds <= {int, float}:
            kind = pa.float64()
        else:
            kind = pa.string()
        fields.append((name, kind))
    return pa.struct(fields)


def _arrow_rows(rows: list[dict[str, Any]], struct: Any) -> list[dict[str, Any]]:
    """Rows with conversation fields Arrow can hold: text fields as text (or None)."""
    import pyarrow as pa

    text = {f.name for f in struct if f.type == pa.string()}
    if not text:
        return rows
    out = []
    for row in rows:
        fields = dict(row[CONVERSATION_FIELDS])
        for name in text:
            value = fields[name]
            if value is not None and not isinstance(value, str):
                fields[name] = json.dumps(value, ensure_ascii=False)
        out.append({**row, CONVERSATION_FIELDS: fields})
    return out


HF_MARKERS = ("dataset_info.json", "dataset_dict.json")


def check_output(out: Path, fmt: str, force: bool = True) -> None:
    """Refuse to overwrite anything that is not an earlier export of the same kind, and
    (without `force`) anything at all; a missing parent folder is an error."""
    check_target(out, fmt, force)
    if not out.exists():
        return
    if fmt == "hf":
        if not out.is_dir():
            raise StoreError(f"{out} is a file; a Hugging Face export needs a folder name")
        if any(out.iterdir()) and not any((out / m).exists() for m in HF_MARKERS):
            raise StoreError(
                f"{out} is a folder that holds something other than a Hugging Face dataset; "
                "not replacing it (choose a new name)"
            )
    elif out.is_dir():
        raise StoreError(f"{out} is a folder; give a file name like {out / ('gold.' + fmt)}")


def export(repo: Repository, out: Path, options: ExportOptions) -> ExportReport:
    """Write the gold dataset and its card; both appear atomically, owner-readable only."""
    check_output(out, options.fmt, options.force)
    if options.fmt != "hf":
        check_target(out.with_name(out.name + ".card.md"), "md", options.force)
    rows = gold_rows(repo, options)
    if not rows:
        raise StoreError("nothing to export: no message has a gold label under this policy")
    card = render_card(repo, rows, options, datetime.now(UTC))
    card_path = out / "README.md" if options.fmt == "hf" else out.with_name(out.name + ".card.md")
    if options.fmt == "hf":
        _write_hf(out, rows, card)
    else:
        writer = {"jsonl": _write_jsonl, "csv": _write_csv, "parquet": _write_parquet}
        writer[options.fmt](out, rows)
        with atomic_writer(card_path) as fh:
            fh.write(card)
    report = ExportReport(
        path=str(out),
        card=str(card_path),
        format=options.fmt,
        rows=len(rows),
        conversations=len({r["conversation_id"] for r in rows}),
        splits=dict(Counter(r.get("split", "all") for r in rows)),
        labels=dict(Counter(label for r in rows for label in r["labels"])),
    )
    return report


def json_line(row: dict[str, Any]) -> str:
    """One JSON Lines record, UTF-8 kept readable; U+2028/9 escaped for line-splitting readers."""
    text = json.dumps(row, ensure_ascii=False)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029") + "\n"


def _write_jsonl(out: Path, rows: list[dict[str, Any]]) -> None:
    with atomic_writer(out) as fh:
        for row in rows:
            fh.write(json_line(row))


def neutralise(cell: str) -> str:
    """Defuse spreadsheet formulas: a cell starting with = + - @ (or tab/CR) gets a quote."""
    return "'" + cell if cell.startswith(FORMULA_PREFIXES) else cell


def _csv_cells(row: dict[str, Any]) -> Iterator[str]:
    for key, value in row.items():
        if key == "labels":
            continue
        if key == CONVERSATION_FIELDS:
            for field in value.values():
                yield neutralise("" if field is None else str(field))
            continue
        if key == "context":
            value = "\n".join(f"{t['speaker']}: {t['text']}" for t in value)
        elif key == "annotators":
            value = ";".join(value)
        elif key == "coders":
            value = "; ".join(f"{c['annotator']}={c['label']}" for c in value)
        elif value is None:
            value = ""
        yield neutralise(str(value))


def _write_csv(out: Path, rows: list[dict[str, Any]]) -> None:
    header = [
        c
        for k in rows[0]
        if k != "labels"
        for c in ([f"conversation.{n}" for n in rows[0][k]] if k == CONVERSATION_FIELDS else [k])
    ]
    with atomic_writer(out, newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for row in rows:
            writer.writerow(list(_csv_cells(row)))


def _arrow_table(rows: list[dict[str, Any]], conversation_type: Any = None) -> Any:
    import pyarrow as pa

    context = pa.list_(pa.struct([("speaker", pa.string()), ("text", pa.string())]))
    fields = [
        ("message_id", pa.string()),
        ("conversation_id", pa.string()),
        ("position", pa.int64()),
        ("speaker", pa.string()),
        ("text", pa.string()),
        ("context", context),
        ("label", pa.string()),
        ("labels", pa.list_(pa.string())),
        ("gold_source", pa.string()),
        ("annotators", pa.list_(pa.string())),
        ("adjudicator", pa.string()),
        ("coders", pa.list_(pa.struct([("annotator", pa.string()), ("label", pa.string())]))),
        ("n_annotators", pa.int64()),
        ("agreement", pa.float64()),
        ("event_count", pa.int64()),
        ("model_version", pa.string()),
    ]
    if rows[0].get(CONVERSATION_FIELDS):  # Parquet holds no struct without fields
        struct = conversation_type or _conversation_type(rows)
        fields.append((CONVERSATION_FIELDS, struct))
        rows = _arrow_rows(rows, struct)
    else:
        rows = [{k: v for k, v in r.items() if k != CONVERSATION_FIELDS} for r in rows]
    if "split" in rows[0]:
        fields.append(("split", pa.string()))
    return pa.Table.from_pylist(rows, schema=pa.schema(fields))


def _write_parquet(out: Path, rows: list[dict[str, Any]]) -> None:
    import pyarrow.parquet as pq

    table = _arrow_table(rows)
    with atomic_path(out) as tmp:
        pq.write_table(table, tmp)


def _write_hf(out: Path, rows: list[dict[str, Any]], card: str) -> None:
    # datasets is heavy to import; only this format needs it.
    from datasets import Dataset, DatasetDict, disable_progress_bars

    disable_progress_bars()

    table = _arrow_table(rows)
    struct = _conversation_type(rows) if rows[0].get(CONVERSATION_FIELDS) else None
    with atomic_path(out, directory=True) as tmp:
        if "split" in rows[0]:
            parts = {}
            for name in SPLIT_NAMES:
                chosen = [r for r in rows if r["split"] == name]
                if chosen:
                    parts[name] = Dataset(_arrow_table(chosen, struct))
            DatasetDict(parts).save_to_disk(str(tmp))
        else:
            Dataset(table).save_to_disk(str(tmp))
        (tmp / "README.md").write_text(card, encoding="utf-8")
