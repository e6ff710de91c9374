"""Data in and out: `techne import` reads messages and labels, `techne export` writes gold."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from tui.cli.common import (
    Annotator,
    AnnotatorColumn,
    Conversation,
    ConversationField,
    Id,
    IdPrefix,
    InputFormat,
    Json,
    Label,
    LabelableSpeaker,
    LabelMap,
    LabelSeparator,
    Order,
    Speaker,
    Text,
    column_map,
    err,
    open_repo,
    out,
)
from tui.progress import ProgressBar
from tui.safe import shown


def import_cmd(
    ctx: typer.Context,
    files: Annotated[list[Path], typer.Argument(help="CSV, JSONL or Parquet files.")],
    text: Text = "text",
    speaker: Speaker = None,
    conversation: Conversation = None,
    order: Order = None,
    id: Id = None,  # noqa: A002
    label: Label = None,
    label_map: LabelMap = None,
    annotator: Annotator = None,
    annotator_column: AnnotatorColumn = None,
    labelable_speaker: LabelableSpeaker = None,
    conversation_field: ConversationField = None,
    label_separator: LabelSeparator = ";",
    id_prefix: IdPrefix = "",
    fmt: InputFormat = None,
    skip_bad: Annotated[
        bool,
        typer.Option("--skip-bad", help="Import the valid rows; write the bad ones to --rejects."),
    ] = False,
    rejects: Annotated[
        Path | None, typer.Option(help="Where --skip-bad writes rejected rows (JSONL).")
    ] = None,
    as_json: Json = False,
) -> None:
    """Import messages, and optionally existing labels, from files.

    Every row is validated; one bad row aborts the import and leaves the store unchanged
    (or use --skip-bad --rejects FILE). Importing the same file again adds nothing.

    Example (AnnoMI):

        techne import AnnoMI-simple.csv --text utterance_text --speaker interlocutor
        --conversation transcript_id --order utterance_id --label main_therapist_behaviour
        --annotator annomi --labelable-speaker therapist --conversation-field mi_quality
        --conversation-field topic

    Labels named differently from the codebook's keys (a CSV of `file label,technique key`):

        techne import coded.csv --label code --annotator lab --label-map labels.csv

    Several coders per message (AnnoMI-full):

        techne import AnnoMI-full.csv ... --label main_therapist_behaviour
        --annotator annomi --annotator-column annotator_id
    """
    if skip_bad and rejects is None:
        raise typer.BadParameter("--skip-bad needs --rejects FILE to say where bad rows go")
    if label_map is not None and label is None:
        raise typer.BadParameter("--label-map needs --label: which column holds the labels?")
    from store.io import import_file

    columns = column_map(
        text=text,
        speaker=speaker,
        conversation=conversation,
        order=order,
        id=id,
        label=label,
        label_map=label_map,
        annotator=annotator,
        annotator_column=annotator_column,
        labelable_speaker=labelable_speaker,
        conversation_field=conversation_field,
        label_separator=label_separator,
        id_prefix=id_prefix,
    )
    reports = []
    with open_repo(ctx) as (ws, repo):
        max_chars = int(ws.section("import").get("max_text_chars", 100_000))
        for file in files:
            bar = ProgressBar(err, f"import {file.name}", unit="bytes", enabled=not as_json)
            with bar as advance:
                report = import_file(
                    repo,
                    file,
                    columns,
                    fmt=fmt,
                    max_text_chars=max_chars,
                    skip_bad=skip_bad,
                    rejects_path=rejects,
                    progress=advance,
                )
            reports.append(report)
            if not as_json:
                out.print(
                    shown(file) + f": {report.rows:,} rows, {report.messages_added:,} new messages "
                    f"({report.messages_existing:,} already there), {report.conversations_added:,} "
                    f"new conversations, {report.labels_added:,} labels"
                    + (
                        f", {report.rejected:,} rejected -> {shown(rejects)}"
                        if report.rejected
                        else ""
                    )
                    + f" in {report.seconds:.1f} s",
                    markup=False,
                )
    if as_json:
        out.print_json(json.dumps([r.as_dict() for r in reports]))


def _parse_split(value: str | None) -> tuple[float, float, float] | None:
    if not value:
        return None
    try:
        parts = tuple(float(p) for p in value.split(","))
    except ValueError:
        raise typer.BadParameter(
            f"expected three numbers like 0.8,0.1,0.1, got {value!r}"
        ) from None
    if len(parts) != 3 or abs(sum(parts) - 1) > 1e-6 or min(parts) < 0:
        raise typer.BadParameter(
            f"train,dev,test shares must be three numbers summing to 1, got {value!r}"
        )
    return parts[0], parts[1], parts[2]


def export_cmd(
    ctx: typer.Context,
    output: Annotated[Path, typer.Argument(help="File (.jsonl, .csv, .parquet) or folder (hf).")],
    fmt: Annotated[
        str | None,
        typer.Option("--format", help="jsonl | csv | parquet | hf (default: from OUTPUT)."),
    ] = None,
    gold: Annotated[
        str, typer.Option(help="Weakest gold source accepted: adjudicated | majority | single.")
    ] = "single",
    split: Annotated[
        str | None,
        typer.Option(help="Conversation-grouped train,dev,test shares, e.g. 0.8,0.1,0.1."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the split.")] = 0,
    context: Annotated[
        int | None, typer.Option(help="Previous turns written with each message.")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace an existing export (atomically).")
    ] = False,
    as_json: Json = False,
) -> None:
    """Export the gold dataset with provenance and a dataset card. An existing output is
    left alone unless --force; the folder it goes into must exist.

    Examples:

        techne export gold.jsonl --split 0.8,0.1,0.1 --seed 0

        techne export gold_hf --format hf --gold majority
    """
    from store.io import ExportOptions, export, format_for

    with open_repo(ctx) as (ws, repo):
        options = ExportOptions(
            fmt=format_for(output, fmt),
            gold=gold,
            context_turns=context
            if context is not None
            else int(ws.section("export").get("context_turns", 3)),
            split=_parse_split(split),
            seed=seed,
            force=force,
        )
        report = export(repo, output, options)
    if as_json:
        out.print_json(json.dumps(report.as_dict()))
    else:
        splits = ", ".join(f"{k} {v:,}" for k, v in report.splits.items())
        out.print(
            f"Wrote {report.rows:,} messages from {report.conversations:,} conversations to "
            f"{shown(report.path)} ({report.format}; {shown(splits)}); card: {shown(report.card)}",
            markup=False,
        )
