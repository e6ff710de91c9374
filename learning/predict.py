"""Bulk scoring: stream a file of any size through a model into Parquet, in resumable chunks."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from learning.inputs import ModelInput, Turn, following_turns
from learning.registry import Predictor
from store import InputError, TechneError
from store.io import ColumnMap, open_rows
from store.io.readers import RowSource

CHUNK_ROWS = 10_000
"""Rows per part file: the unit of resumption and the bound on memory."""
OPEN_CONVERSATIONS = 10_000
"""Conversations whose recent turns are remembered (files are usually grouped by conversation)."""
FOLLOWING_ROWS = 10_000
"""How many rows further down the file the turns after a message are looked for."""

ProgressFn = Callable[[int, int], None]


class PredictError(TechneError):
    """The input or output of a bulk prediction is not usable."""


@dataclass(frozen=True)
class PredictReport:
    output: str
    rows: int
    chunks: int
    chunks_resumed: int
    seconds: float
    messages_per_s: float
    """Messages scored in this run (resumed chunks left out) per second of the run."""
    rows_scored: int = 0
    messages_encoded: int = 0
    """Texts the encoder ran on: each distinct text of a chunk once, the turns read as
    context included (fine-tuned models: every scored message)."""
    encoded_per_s: float = 0.0
    runtime: str = ""

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class _Waiting:
    """A labelable row read but not yet in a chunk: it may still need turns after it."""

    mid: str
    conv: str
    item: ModelInput
    row: int
    following: list[Turn]


def _chunks(
    source_path: Path | RowSource,
    columns: ColumnMap,
    turns: int,
    fmt: str | None,
    chunk_rows: int,
    after: int = 0,
) -> Iterator[list[tuple[str, str, ModelInput]]]:
    """Chunks of (message id, conversation id, input) in file order; context per conversation.

    With `after` > 0 each input also carries up to `after` turns that follow it in its
    conversation: a row waits (in file order, so chunks stay the same from run to run)
    until they are read, its conversation ends the file, or FOLLOWING_ROWS rows have passed.
    """
    source = source_path if isinstance(source_path, RowSource) else open_rows(source_path, fmt)
    file = str(source.path)
    rows = source.rows()
    if columns.order:
        rows = _ordered(rows, columns, file, source.unit)
    history: OrderedDict[str, deque[Turn]] = OrderedDict()
    chunk: list[tuple[str, str, ModelInput]] = []
    waiting: deque[_Waiting] = deque()
    missing: dict[str, deque[_Waiting]] = {}  # per conversation: rows still short of turns
    row = -1

    def ready(w: _Waiting) -> bool:
        return not w.conv or len(w.following) >= after or row - w.row >= FOLLOWING_ROWS

    def take(w: _Waiting) -> tuple[str, str, ModelInput]:
        short = missing.get(w.conv)
        if short and short[0] is w:
            short.popleft()
            if not short:
                del missing[w.conv]
        return w.mid, w.conv, replace(w.item, following=tuple(w.following))

    for row, (line, values) in enumerate(rows):
        if isinstance(values, InputError):
            raise values
        text = values.get(columns.text)
        if not isinstance(text, str) or not text.strip():
            raise InputError(
                file, line, columns.text, "message text is missing or empty", source.unit
            )
        conv = str(values.get(columns.conversation, "")) if columns.conversation else ""
        speaker = str(values.get(columns.speaker, "")).lower() if columns.speaker else ""
        mid = (
            str(values[columns.id])
            if columns.id and values.get(columns.id) is not None
            else f"{line}"
        )
        turns_before = history.get(conv) if conv else None
        item = ModelInput(text, speaker, tuple(turns_before) if turns_before else ())
        if conv:
            if conv not in history:
                history[conv] = deque(maxlen=max(turns, 1))
                if len(history) > OPEN_CONVERSATIONS:
                    history.popitem(last=False)
            history.move_to_end(conv)
            history[conv].append(Turn(speaker, text))
            short = missing.get(conv)
            if short:
                for w in short:
                    w.following.append(Turn(speaker, text))
                while short and len(short[0].following) >= after:
                    short.popleft()
                if not short:
                    del missing[conv]
        labelable = not columns.labelable_speakers or speaker in columns.labelable_speakers
        if labelable:
            waiting.append(_Waiting(mid, conv, item, row, []))
            if after > 0 and conv:
                missing.setdefault(conv, deque()).append(waiting[-1])
        while waiting and (after <= 0 or ready(waiting[0])):
            chunk.append(take(waiting.popleft()))
            if len(chunk) >= chunk_rows:
                yield chunk
                chunk = []
    while waiting:
        chunk.append(take(waiting.popleft()))
        if len(chunk) >= chunk_rows:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _ordered(
    rows: Iterator[tuple[int, Any]], columns: ColumnMap, file: str, unit: str
) -> Iterator[tuple[int, Any]]:
    """Rows with each conversation's turns sorted by the --order column (ties in file
    order). A conversation is complete when FOLLOWING_ROWS rows have passed since its last
    row (or the file ends); a row of it after that is refused: memory stays bounded."""
    if not columns.conversation:
        raise InputError(file, 1, columns.order or "", "--order needs --conversation", unit)
    waiting: OrderedDict[str, tuple[int, list[tuple[int, int, Any]]]] = OrderedDict()
    done: set[str] = set()

    def flush(conv: str) -> Iterator[tuple[int, Any]]:
        _, turns = waiting.pop(conv)
        done.add(conv)
        for _, line, values in sorted(turns, key=lambda t: (t[0], t[1])):
            yield line, values

    for n, (line, values) in enumerate(rows):
        if isinstance(values, InputError):
            yield line, values
            continue
        conv = str(values.get(columns.conversation, ""))
        if conv in done:
            raise InputError(
                file,
                line,
                columns.conversation,
                f"conversation {conv!r} continues more than {FOLLOWING_ROWS:,} rows after its "
                "previous turn; with --order a conversation's rows must be within that distance",
                unit,
            )
        position = _turn_number(values.get(columns.order), file, line, columns.order, unit)
        _, turns = waiting.pop(conv, (n, []))
        turns.append((position, line, values))
        waiting[conv] = (n, turns)
        while waiting and n - next(iter(waiting.values()))[0] >= FOLLOWING_ROWS:
            yield from flush(next(iter(waiting)))
    while waiting:
        yield from flush(next(iter(waiting)))


def _turn_number(value: Any, file: str, line: int, column: str | None, unit: str) -> int:
    """A turn number: an integer, or a string or float holding one ("3", "3.0")."""
    if not isinstance(value, bool):
        if isinstance(value, int):
            return value
        try:
            number = float(value) if isinstance(value, (str, float)) else float("nan")
        except ValueError:
            number = float("nan")
        if number == number and number not in (float("inf"), float("-inf")):
            if number.is_integer():
                return int(number)
    raise InputError(file, line, column or "", f"must be an integer, got {value!r}", unit)


def predict_file(
    predictor: Predictor,
    source: Path,
    output: Path,
    columns: ColumnMap,
    *,
    model_tag: str,
    model_checksum: str,
    fmt: str | None = None,
    batch_size: int = 256,
    chunk_rows: int = CHUNK_ROWS,
    progress: ProgressFn | None = None,
) -> PredictReport:
    """Score every (labelable) message of `source` into `output` (Parquet).

    Finished chunks are kept in `OUTPUT.parts/`; a run that was interrupted resumes there
    without redoing them, as long as the input and the model are the same.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    if output.suffix.lower() != ".parquet":
        raise PredictError(f"{output}: the output must be a .parquet file")
    started = time.perf_counter()
    parts = output.with_name(output.name + ".parts")
    stat = source.stat()
    manifest = {
        "input": str(source.resolve()),
        "input_size": stat.st_size,
        "input_mtime": stat.st_mtime_ns,
        "model": model_tag,
        "checksum": model_checksum,
        "chunk_rows": chunk_rows,
        "labelable": list(columns.labelable_speakers),
        "order": columns.order,
        "runtime": predictor.runtime_used,  # other vectors: nothing to resume
    }
    manifest_path = parts / "manifest.json"
    if parts.exists():
        old = json.loads(manifest_path.read_text()) if manifest_path.exists() else None
        if old != manifest:
            shutil.rmtree(parts)  # a different input or model: nothing to resume
    parts.mkdir(parents=True, exist_ok=True)
    manifest_path.write_text(json.dumps(manifest))
    labels = predictor.labels
    predictor.batch_size = batch_size
    rows = resumed = chunks = scored = 0
    encoded_before = predictor.encoded
    reader = open_rows(source, fmt)  # progress: the share of the file read so far
    card = predictor.card
    after = following_turns(card.context_mode, card.context_turns)
    for number, chunk in enumerate(
        _chunks(reader, columns, card.context_turns, fmt, chunk_rows, after)
    ):
        chunks += 1
        rows += len(chunk)
        part = parts / f"part-{number:06d}.parquet"
        if part.exists() and pq.ParquetFile(part).metadata.num_rows == len(chunk):
            resumed += 1
            continue
        proba = np.asarray(predictor.predict_proba([item for _, _, item in chunk]))
        scored += len(chunk)
        top = proba.argmax(axis=1)
        table = pa.table(
            {
                "message_id": [mid for mid, _, _ in chunk],
                "conversation_id": [conv for _, conv, _ in chunk],
                "label": [labels[i] for i in top],
                "confidence": proba.max(axis=1).astype(np.float32),
                **{f"p_{label}": proba[:, j].astype(np.float32) for j, label in enumerate(labels)},
                "model_version": [model_tag] * len(chunk),
            }
        )
        tmp = part.with_suffix(".tmp")
        pq.write_table(table, tmp)
        os.replace(tmp, part)  # a part exists whole or not at all
        if progress:
            progress(reader.bytes_read, reader.total_bytes)
    _combine(parts, output)
    shutil.rmtree(parts)
    seconds = max(time.perf_counter() - started, 1e-9)
    encoded = predictor.encoded - encoded_before
    return PredictReport(
        str(output),
        rows,
        chunks,
        resumed,
        round(seconds, 2),
        round(scored / seconds, 1),
        rows_scored=scored,
        messages_encoded=encoded,
        encoded_per_s=round(encoded / seconds, 1),
        runtime=predictor.runtime_used,
    )


def _combine(parts: Path, output: Path) -> None:
    """Concatenate the part files into one Parquet file, one part in memory at a time."""
    import pyarrow.parquet as pq

    from store.io.atomic import atomic_path

    files = sorted(parts.glob("part-*.parquet"))
    with atomic_path(output) as tmp:
        writer = None
        for f in files:
            table = pq.read_table(f)
            writer = writer or pq.ParquetWriter(tmp, table.schema)
            writer.write_table(table)
        if writer is None:
            raise PredictError("the input has no messages to score")
        writer.close()
