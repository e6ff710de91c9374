"""Command-line options shared by several commands (column mapping, output format)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

Text = Annotated[str, typer.Option(help="Column with the message text.")]
Speaker = Annotated[str | None, typer.Option(help="Column with the speaker role.")]
Conversation = Annotated[str | None, typer.Option(help="Column with the conversation id.")]
Order = Annotated[str | None, typer.Option(help="Column with the turn number in its conversation.")]
Id = Annotated[str | None, typer.Option("--id", help="Column with a unique message id.")]
Label = Annotated[
    str | None,
    typer.Option(help="Column with existing labels (technique keys or names; see --label-map)."),
]
LabelMap = Annotated[
    Path | None,
    typer.Option(
        help="CSV or TOML file mapping the file's labels to technique keys (`Question,"
        "open_question`). Without it a label must be a key or a technique's name (any case)."
    ),
]
Annotator = Annotated[
    str | None,
    typer.Option(help="Who gave the labels in --label (with --annotator-column: a name prefix)."),
]
AnnotatorColumn = Annotated[
    str | None,
    typer.Option(
        help="Column naming each row's coder; rows repeating a conversation and position are "
        "the same message coded by different people (AnnoMI-full's layout)."
    ),
]
LabelableSpeaker = Annotated[
    list[str] | None,
    typer.Option(help="Speaker whose messages get coded (repeatable; default: all)."),
]
ConversationField = Annotated[
    list[str] | None,
    typer.Option(help="Column constant within a conversation, kept as its metadata (repeatable)."),
]
LabelSeparator = Annotated[str, typer.Option(help="Separator of several labels in one cell.")]
IdPrefix = Annotated[
    str, typer.Option(help="Prefix for conversation and message ids, to keep sources apart.")
]
InputFormat = Annotated[
    str | None,
    typer.Option("--format", help="csv | jsonl | parquet (default: from the extension)."),
]
Json = Annotated[bool, typer.Option("--json", help="Print the report as JSON.")]
Device = Annotated[str | None, typer.Option(help="auto | cpu | cuda (default: techne.toml).")]
OptionalPath = Annotated[Path | None, typer.Option()]


def hide_flag_types() -> None:
    """Typer's help shows every option's Python type, so flags (`--json`, `--help`) read
    `<bool>` as if they took a value. Show nothing in the type column for flags instead."""
    from typer.core import TyperOption

    shown = TyperOption.display_type_rich
    if getattr(shown, "hides_flags", False):
        return

    def display_type_rich(self: TyperOption, ctx: object) -> str | None:
        if self.is_flag and self.metavar is None:
            return None
        return shown(self, ctx)  # type: ignore[arg-type]

    display_type_rich.hides_flags = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]
