"""`techne demo`: the demo workspace from the bundled corpus, a first model, the app."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer

from store.errors import WorkspaceError
from store.workspace import CONFIG_NAME, Workspace, load_workspace
from tui.cli import app, err, init_workspace, out, print_status
from tui.progress import ProgressBar
from tui.safe import shown

DEMO_ANNOTATOR = "demo-seed"


def build_demo(
    path: Path, fresh: bool = False, train: bool = True, db: str | None = None
) -> Workspace:
    """Create (or reuse) the demo workspace from the bundled corpus and codebook; with
    `train`, run a first round so the demo opens with a model and suggestions. `db` puts the
    store in PostgreSQL instead of the workspace's SQLite file."""
    import seeds
    from store.io import ColumnMap, import_file

    if fresh and path.exists():
        if not (path / CONFIG_NAME).exists():
            raise WorkspaceError(f"{path} exists and is not a Techne workspace; not removing it")
        shutil.rmtree(path)
    if not (path / CONFIG_NAME).exists():
        init_workspace(path, "mi", db, name="techne-demo")
    ws = load_workspace(path)
    repo = ws.open_repository()
    try:
        report = import_file(
            repo,
            seeds.demo_corpus(),
            ColumnMap(
                text="text",
                speaker="speaker",
                conversation="conversation_id",
                order="turn",
                label="seed_label",
                annotator=DEMO_ANNOTATOR,
                labelable_speakers=("therapist",),
                conversation_fields=("topic", "quality", "outcome"),
            ),
        )
        if report.messages_added:
            err.print(
                f"Demo corpus: {report.messages_added:,} messages in "
                f"{report.conversations_added:,} conversations, {report.labels_added:,} seed "
                "labels",
                markup=False,
            )
        if train and repo.artifacts.active() is None:
            from learning.rounds import run_round
            from learning.settings import LearningSettings

            err.print(
                "Training a first model on the seed labels (encodes every message once; "
                "a minute or two on a laptop CPU)",
                markup=False,
            )
            with ProgressBar(err, "training a first model") as progress:
                result = run_round(
                    repo, ws.models_dir, LearningSettings.from_workspace(ws), progress
                )
            err.print(
                f"First model {result.model.tag}: trained on {result.metrics['train_size']:,} "
                f"labels in {sum(result.timings.values()):.0f} s",
                markup=False,
            )
    finally:
        repo.close()
    return ws


@app.command("demo")
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
    ws = build_demo(path, fresh, train)
    if sys.stdout.isatty() and not status:
        from tui.app import make_app

        make_app(ws.root, annotator=annotator).run()
        return
    repo = ws.open_repository()
    try:
        print_status(ws, repo.status())
    finally:
        repo.close()
    out.print(f"\nLabel in the terminal: techne -w {shown(path)} annotate", markup=False)
