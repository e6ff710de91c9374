"""The `techne` command line: the Typer app, its commands top-down, and the entry point.
Imports stay light: torch loads only in commands that train."""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from store.errors import TechneError, WorkspaceError
from store.workspace import load_workspace
from tui.cli import annotate, data, demo, insights, models, simulate, team, workspace
from tui.cli.common import Options, err, hide_flag_types, out
from tui.failures import environmental, failure_text
from tui.safe import clip

hide_flag_types()

app = typer.Typer(
    name="techne",
    help="Code therapy techniques in counseling text: label, learn, export.",
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
)


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


# -- the commands, in the order `techne --help` lists them ---------------------------------------

app.command("init")(workspace.init_cmd)
app.command("import")(data.import_cmd)
app.command("export")(data.export_cmd)
app.command("status")(workspace.status_cmd)
app.command("annotate")(annotate.annotate_cmd)
app.command("demo")(demo.demo_cmd)
app.command("insights")(insights.insights_cmd)

models_app = typer.Typer(help="Inspect model versions and roll back.", no_args_is_help=True)
models_app.command("list")(models.list_cmd)
models_app.command("show")(models.show_cmd)
models_app.command("activate")(models.activate_cmd)
app.add_typer(models_app, name="models")
app.command("retrain")(models.retrain_cmd)
app.command("refresh-encoder")(models.refresh_encoder_cmd)
app.command("predict")(models.predict_cmd)
app.command("simulate")(simulate.simulate_cmd)

annotators_app = typer.Typer(help="List annotators and set their roles.", no_args_is_help=False)
annotators_app.callback(invoke_without_command=True)(team.annotators_cmd)
annotators_app.command("add")(team.annotators_add_cmd)
app.add_typer(annotators_app, name="annotators")
app.command("agreement")(team.agreement_cmd)
app.command("history")(team.history_cmd)
app.command("adjudicate")(team.adjudicate_cmd)


# -- entry point ------------------------------------------------------------------------------


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
