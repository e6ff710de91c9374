"""`techne demo`: the demo workspace from the bundled corpus, a first model, the app."""

from __future__ import annotations

import sys
from contextlib import closing
from pathlib import Path
from typing import Annotated

import typer

from tui.cli.common import err, out, print_status
from tui.demo import build_demo
from tui.safe import shown


def demo_cmd(
    path: Annotated[Path, typer.Option("--path", help="Where the demo workspace lives.")] = Path(
        "demo-workspace"
    ),
    fresh: Annotated[bool, typer.Option("--fresh", help="Rebuild it from scratch.")] = False,
    train: Annotated[
        bool, typer.Option("--train/--no-train", help="Train a first model if there is none.")
    ] = True,
    status: Annotated[
        bool, typer.Option("--status", help="Print the status instead of opening the app.")
    ] = False,
    annotator: Annotated[str | None, typer.Option(help="Who is labelling.")] = None,
) -> None:
    """Build the demo workspace from the bundled corpus (MI codebook, seed labels, a first
    model) and open the annotation app on it (or print its status off a terminal).

    Example:

        techne demo --fresh
    """
    ws = build_demo(path, fresh, train, console=err)
    if sys.stdout.isatty() and not status:
        from tui.app import make_app

        make_app(ws.root, annotator=annotator).run()
        return
    with closing(ws.open_repository()) as repo:
        print_status(ws, repo.status())
    out.print(f"\nLabel in the terminal: techne -w {shown(path)} annotate", markup=False)
