"""`techne annotate`: the annotation app, which needs a terminal to draw on and read keys."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from store.errors import TechneError
from tui.cli import _opts, app


@app.command("annotate")
def annotate_cmd(
    ctx: typer.Context,
    annotator: Annotated[
        str | None, typer.Option(help="Who is labelling (default: your login name).")
    ] = None,
    blind: Annotated[
        bool, typer.Option("--blind", help="Hide suggestions until you have chosen.")
    ] = False,
) -> None:
    """Label messages in the terminal: the model pre-selects its suggestion, enter saves.

    Keys: enter save · 1-9 or a technique's letter choose · s skip · f flag · n note ·
    u undo · left/right move · / find · r retrain · b blind · ? codebook · v conversation.

    Example:

        techne -w study annotate --annotator dana
    """
    require_terminal("annotate")
    from tui.app import make_app

    opts = _opts(ctx)
    make_app(opts.workspace, opts.db, annotator, blind=blind).run()


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
