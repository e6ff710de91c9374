"""Workspace commands: `techne init` creates one, `techne status` reports on it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from store.workspace import DB_NAME, init_workspace
from tui.cli.common import Json, open_repo, options, out, print_status
from tui.safe import shown


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
    db = db or options(ctx).db
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


def status_cmd(ctx: typer.Context, as_json: Json = False) -> None:
    """Messages, conversations, labels per technique and annotator, rounds, active model.

    Example:

        techne -w study status --json
    """
    with open_repo(ctx) as (ws, repo):
        report = repo.status()
    if as_json:
        out.print_json(json.dumps({"workspace": str(ws.root), **report}))
    else:
        print_status(ws, report)
