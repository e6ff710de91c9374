"""`techne annotate`: the annotation app, which needs a terminal to draw on and read keys."""

from __future__ import annotations

from typing import Annotated

import typer

from tui.cli.common import options, require_terminal


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

    opts = options(ctx)
    make_app(opts.workspace, opts.db, annotator, blind=blind).run()
