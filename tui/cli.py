"""The `techne` command line. Imports stay light: torch loads only in commands that train."""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from store.errors import TechneError, WorkspaceError
from store.workspace import (
    CONFIG_NAME,
    DB_NAME,
    load_workspace,
    make_private_folder,
    resolve_db_url,
    write_config,
)
from tui import options as opt
from tui.failures import environmental, failure_text
from tui.progress import ProgressBar
from tui.safe import SafeConsole, clip, literal, shown

if TYPE_CHECKING:  # the store's SQLAlchemy half loads inside the commands that use it
    from store import Repository, Workspace
    from store.io import ColumnMap

opt.hide_flag_types()

out = SafeConsole(highlight=False, soft_wrap=True, emoji=False)
err = SafeConsole(stderr=True, highlight=False, emoji=False)

app = typer.Typer(
    name="techne",
    help="Code therapy techniques in counseling text: label, learn, export.",
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
)


class Options:
    """Global options, kept on the click context."""

    def __init__(self, workspace: Path | None, db: str | None) -> None:
        self.workspace = workspace
        self.db = db

    def open(self) -> tuple[Workspace, Repository]:
        ws = load_workspace(self.workspace, self.db)
        repo = ws.open_repository()
        return ws, repo


def _opts(ctx: typer.Context) -> Options:
    obj = ctx.find_root().obj
    assert isinstance(obj, Options)
    return obj


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    workspace: Annotated[
        Path | None,
        typer.Option(
            "--workspace",
            "-w",
            help="Workspace folder (default: $TECHNE_WORKSPACE, "
            "then the current folder and its parents).",
        ),
    ] = None,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            help="Database URL, e.g. postgresql://user@host/techne "
            "(default: $TECHNE_DB_URL, then techne.toml, then techne.db).",
        ),
    ] = None,
) -> None:
    ctx.obj = Options(workspace, db)
    if ctx.invoked_subcommand is None:
        # A bare `techne` inside a workspace, on a terminal, opens the annotation app.
        if sys.stdout.isatty() and _in_workspace(workspace):
            from tui.app import make_app

            make_app(workspace, db).run()
        else:
            out.print(ctx.get_help(), markup=False)


def _in_workspace(explicit: Path | None) -> bool:
    try:
        load_workspace(explicit)
    except WorkspaceError:
        return False
    return True


# -- init -------------------------------------------------------------------------------------


def _codebook_spec(name_or_file: str) -> Any:
    import seeds
    from store.codebooks import load_codebook_file

    path = seeds.codebook_path(name_or_file)
    if path is None:
        candidate = Path(name_or_file)
        if not candidate.suffix and not candidate.exists():
            raise WorkspaceError(
                f"no bundled codebook {name_or_file!r}; bundled: "
                f"{', '.join(seeds.builtin_codebooks())} (or pass a .toml file)"
            )
        path = candidate
    return load_codebook_file(path)


def init_workspace(
    path: Path,
    codebook: str,
    db: str | None,
    name: str | None = None,
    maintainer: str | None = None,
) -> Workspace:
    """Create a workspace folder with techne.toml, its database and codebook. Its creator
    (`maintainer`, default: the login name) is its maintainer, who may also adjudicate."""
    import getpass

    from store.repository import Repository

    spec = _codebook_spec(codebook)
    if (path / CONFIG_NAME).exists():
        raise WorkspaceError(f"{path} is already a Techne workspace ({CONFIG_NAME} exists)")
    created = make_private_folder(path)
    try:
        url = resolve_db_url(path, {"workspace": {"db": db}} if db else {})
        repo = Repository.open(url, create=True)
        try:
            repo.install_codebook(spec)
            repo.set_role(maintainer or getpass.getuser(), "maintainer")
        finally:
            repo.close()
        write_config(path, name=name or path.resolve().name, codebook=spec.key, db_url=db)
        make_private_folder(path / "models")
    except BaseException:
        if created:
            shutil.rmtree(path, ignore_errors=True)
        raise
    return load_workspace(path, db)


@app.command("init")
def init_cmd(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="Folder to create the workspace in.")] = Path("."),
    codebook: Annotated[
        str,
        typer.Option(
            "--codebook", "-c", help="Bundled codebook (mi, annomi, supportive) or a .toml file."
        ),
    ] = "mi",
    db: Annotated[
        str | None, typer.Option("--db", help="Store in this database instead of techne.db.")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Workspace name (default: folder name).")] = None,
    maintainer: Annotated[
        str | None,
        typer.Option(help="Who maintains it (retrains, adjudicates, gives roles; default: you)."),
    ] = None,
) -> None:
    """Create a workspace: techne.toml, the database and the codebook.

    You (or --maintainer) become its maintainer, who retrains, adjudicates and gives roles;
    others join as experts, and `techne annotators add NAME --role lead` lets one adjudicate.

    Examples:

        techne init study --codebook annomi

        techne init team --db postgresql://techne@db.example/techne
    """
    db = db or _opts(ctx).db
    import getpass

    who = (maintainer or getpass.getuser()).strip()
    ws = init_workspace(path, codebook, db, name, who)
    where = ws.db_url if db else str(ws.root / DB_NAME)
    out.print(
        shown(
            f"Created workspace {ws.root} (codebook {ws.codebook_key}, store {where}); "
            f"{who} is its maintainer. Give roles with "
            "`techne annotators add NAME --role lead`."
        ),
        markup=False,
    )


# -- import -----------------------------------------------------------------------------------


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


@app.command("import")
def import_cmd(
    ctx: typer.Context,
    files: Annotated[list[Path], typer.Argument(help="CSV, JSONL or Parquet files.")],
    text: opt.Text = "text",
    speaker: opt.Speaker = None,
    conversation: opt.Conversation = None,
    order: opt.Order = None,
    id: opt.Id = None,  # noqa: A002
    label: opt.Label = None,
    label_map: opt.LabelMap = None,
    annotator: opt.Annotator = None,
    annotator_column: opt.AnnotatorColumn = None,
    labelable_speaker: opt.LabelableSpeaker = None,
    conversation_field: opt.ConversationField = None,
    label_separator: opt.LabelSeparator = ";",
    id_prefix: opt.IdPrefix = "",
    fmt: opt.InputFormat = None,
    skip_bad: Annotated[
        bool,
        typer.Option("--skip-bad", help="Import the valid rows; write the bad ones to --rejects."),
    ] = False,
    rejects: Annotated[
        Path | None, typer.Option(help="Where --skip-bad writes rejected rows (JSONL).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
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

    ws, repo = _opts(ctx).open()
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
    max_chars = int(ws.section("import").get("max_text_chars", 100_000))
    reports = []
    try:
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
    finally:
        repo.close()
    if as_json:
        out.print_json(json.dumps([r.as_dict() for r in reports]))


# -- export -----------------------------------------------------------------------------------


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


@app.command("export")
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
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Export the gold dataset with provenance and a dataset card. An existing output is
    left alone unless --force; the folder it goes into must exist.

    Examples:

        techne export gold.jsonl --split 0.8,0.1,0.1 --seed 0

        techne export gold_hf --format hf --gold majority
    """
    from store.io import ExportOptions, export, format_for

    ws, repo = _opts(ctx).open()
    try:
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
    finally:
        repo.close()
    if as_json:
        out.print_json(json.dumps(report.as_dict()))
    else:
        splits = ", ".join(f"{k} {v:,}" for k, v in report.splits.items())
        out.print(
            f"Wrote {report.rows:,} messages from {report.conversations:,} conversations to "
            f"{shown(report.path)} ({report.format}; {shown(splits)}); card: {shown(report.card)}",
            markup=False,
        )


# -- status -----------------------------------------------------------------------------------


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


@app.command("status")
def status_cmd(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Messages, conversations, labels per technique and annotator, rounds, active model.

    Example:

        techne -w study status --json
    """
    ws, repo = _opts(ctx).open()
    try:
        report = repo.status()
    finally:
        repo.close()
    if as_json:
        out.print_json(json.dumps({"workspace": str(ws.root), **report}))
    else:
        print_status(ws, report)


# -- entry point ------------------------------------------------------------------------------

from tui import (  # noqa: E402,F401  (register their commands)
    cli_annotate,
    cli_demo,
    cli_insights,
    cli_learning,
    cli_team,  # noqa: E402,F401  (registers annotators, agreement, history, adjudicate)
)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 failure, 2 usage).

    Every failure a user or the machine causes ends in one line on stderr, escaped and
    clipped (it may quote input), never in a traceback. Files it creates are private (0600,
    folders 0700): clinical text is not for other users of the machine.
    """
    umask = os.umask(0o077)
    os.umask(umask | 0o077)
    try:
        return _run(argv)
    finally:
        os.umask(umask)


def _run(argv: list[str] | None) -> int:
    try:
        app(args=argv, prog_name="techne", standalone_mode=False)
    except typer.Exit as exc:
        return int(getattr(exc, "exit_code", 0) or 0)
    except typer.Abort:
        err.print("aborted", markup=False)
        return 130
    except typer.TyperException as exc:  # click's usage errors, vendored by typer
        show = getattr(exc, "show", None)
        if callable(show):
            buffer = io.StringIO()
            show(file=buffer)
            usage = "\n".join(
                clip(line, 500) for line in buffer.getvalue().rstrip("\n").split("\n")
            )
            err.print(usage, markup=False, soft_wrap=True)
        else:
            err.print(f"error: {clip(exc, 500)}", markup=False)
        return int(getattr(exc, "exit_code", 2))
    except TechneError as exc:
        err.print(f"error: {clip(exc, 500)}", markup=False, soft_wrap=True)
        return 1
    except KeyboardInterrupt:
        err.print("interrupted", markup=False)
        return 130
    except Exception as exc:
        if not isinstance(exc, environmental()):
            raise  # a bug: its traceback is worth more than a line
        err.print(f"error: {clip(failure_text(exc), 500)}", markup=False, soft_wrap=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
