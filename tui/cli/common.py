"""What the commands share: the output consoles, the global options, the opened store,
the column-mapping and output options, and the status report as tables."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from store.errors import TechneError
from store.workspace import load_workspace
from tui.safe import SafeConsole, literal, shown

if TYPE_CHECKING:  # the store's SQLAlchemy half loads inside the commands that use it
    from store import Repository, Workspace
    from store.io import ColumnMap

out = SafeConsole(highlight=False, soft_wrap=True, emoji=False)
err = SafeConsole(stderr=True, highlight=False, emoji=False)


class Options:
    """Global options, kept on the click context."""

    def __init__(self, workspace: Path | None, db: str | None) -> None:
        self.workspace = workspace
        self.db = db

    def open(self) -> tuple[Workspace, Repository]:
        ws = load_workspace(self.workspace, self.db)
        repo = ws.open_repository()
        return ws, repo


def options(ctx: typer.Context) -> Options:
    """The global options (--workspace, --db) of the command line that is running."""
    obj = ctx.find_root().obj
    assert isinstance(obj, Options)
    return obj


@contextmanager
def open_repo(ctx: typer.Context) -> Iterator[tuple[Workspace, Repository]]:
    """`with open_repo(ctx) as (ws, repo):` the workspace and its store, closed on exit."""
    ws, repo = options(ctx).open()
    try:
        yield ws, repo
    finally:
        repo.close()


def column_map(
    *,
    labelable_speaker: list[str] | None = None,
    conversation_field: list[str] | None = None,
    **columns: Any,
) -> ColumnMap:
    """A ColumnMap from the import flags."""
    from store.io import ColumnMap

    return ColumnMap(
        labelable_speakers=tuple(s.strip().lower() for s in labelable_speaker or ()),
        conversation_fields=tuple(conversation_field or ()),
        **columns,
    )


def require_terminal(command: str) -> None:
    """The app draws on a terminal and reads keys from one: refuse at once (instead of
    writing escape codes into a file or pipe and waiting for keys that never come)."""
    redirected = [name for name, f in (("input", sys.stdin), ("output", sys.stdout)) if not _tty(f)]
    if redirected:
        raise TechneError(
            f"techne {command} needs a terminal, but its {' and '.join(redirected)} "
            f"{'is' if len(redirected) == 1 else 'are'} redirected; run it in a terminal "
            "(reports: techne status, techne agreement, techne export)"
        )


def _tty(stream: Any) -> bool:
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError):
        return False


def print_status(ws: Workspace, report: dict[str, Any]) -> None:
    """The status report as tables."""
    out.print(shown(f"Workspace {ws.root}  ·  codebook {report['codebook']}"), markup=False)
    out.print(
        f"{report['messages']:,} messages in {report['conversations']:,} conversations; "
        f"{report['labelable_messages']:,} to code, {report['labelled']:,} labelled, "
        f"{report['unlabelled']:,} to go; {report['skipped']:,} skipped, "
        f"{report['flagged']:,} flagged",
        markup=False,
    )
    table = Table(title="Labelled per technique", title_justify="left")
    table.add_column("technique")
    table.add_column("messages", justify="right")
    for key, count in report["labelled_per_technique"].items():
        table.add_row(literal(key), f"{count:,}")
    out.print(table)
    if report["per_annotator"]:
        people = Table(title="Per annotator", title_justify="left")
        people.add_column("annotator")
        people.add_column("role")
        people.add_column("labelled", justify="right")
        for name, row in report["per_annotator"].items():
            people.add_row(literal(name), literal(row["role"]), f"{row['labelled']:,}")
        out.print(people)
    model = report["active_model"]
    model_text = f"{model['tag']} ({model['backend']})" if model else "none yet"
    out.print(shown(f"Rounds: {report['rounds']}  ·  active model: {model_text}"), markup=False)


# -- options several commands take ------------------------------------------------------------

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


def hide_flag_types() -> None:
    """Typer's help shows every option's Python type, so flags (`--json`, `--help`) read
    `<bool>` as if they took a value. Show nothing in the type column for flags instead."""
    from typer.core import TyperOption

    typed = TyperOption.display_type_rich
    if getattr(typed, "hides_flags", False):
        return

    def display_type_rich(self: TyperOption, ctx: object) -> str | None:
        if self.is_flag and self.metavar is None:
            return None
        return typed(self, ctx)  # type: ignore[arg-type]

    display_type_rich.hides_flags = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]
