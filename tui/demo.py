"""The demo workspace: the bundled corpus and MI codebook, its seed labels, a first model."""

from __future__ import annotations

import shutil
from contextlib import closing
from pathlib import Path

from rich.console import Console

from store.errors import WorkspaceError
from store.workspace import CONFIG_NAME, Workspace, init_workspace, load_workspace
from tui.progress import ProgressBar
from tui.safe import SafeConsole

DEMO_ANNOTATOR = "demo-seed"


def build_demo(
    path: Path,
    fresh: bool = False,
    train: bool = True,
    db: str | None = None,
    console: Console | None = None,
) -> Workspace:
    """Create (or reuse) the demo workspace from the bundled corpus and codebook; with
    `train`, run a first round so the demo opens with a model and suggestions. `db` puts the
    store in PostgreSQL instead of the workspace's SQLite file. What it does is told on
    `console` (default: stderr)."""
    import seeds
    from store.io import ColumnMap, import_file

    say = console or SafeConsole(stderr=True, highlight=False, emoji=False)
    if fresh and path.exists():
        if not (path / CONFIG_NAME).exists():
            raise WorkspaceError(f"{path} exists and is not a Techne workspace; not removing it")
        shutil.rmtree(path)
    if not (path / CONFIG_NAME).exists():
        init_workspace(path, "mi", db, name="techne-demo")
    ws = load_workspace(path)
    with closing(ws.open_repository()) as repo:
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
            say.print(
                f"Demo corpus: {report.messages_added:,} messages in "
                f"{report.conversations_added:,} conversations, {report.labels_added:,} seed "
                "labels",
                markup=False,
            )
        if train and repo.artifacts.active() is None:
            from learning.rounds import run_round
            from learning.settings import LearningSettings

            say.print(
                "Training a first model on the seed labels (encodes every message once; "
                "a minute or two on a laptop CPU)",
                markup=False,
            )
            with ProgressBar(say, "training a first model") as progress:
                result = run_round(
                    repo, ws.models_dir, LearningSettings.from_workspace(ws), progress
                )
            say.print(
                f"First model {result.model.tag}: trained on {result.metrics['train_size']:,} "
                f"labels in {sum(result.timings.values()):.0f} s",
                markup=False,
            )
    return ws
