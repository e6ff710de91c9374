"""The Textual app: a thin shell that owns the workspace and shows the annotate screen."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Any

from textual import on
from textual.app import App
from textual.worker import Worker, WorkerState

from store import CodebookView, Repository, Workspace, load_workspace
from tui.screens.annotate import AnnotateScreen


class TechneApp(App[None]):
    """Keyboard-driven annotation of counseling messages."""

    CSS_PATH = "app.tcss"
    TITLE = "Techne"

    def __init__(
        self,
        workspace: Workspace,
        repo: Repository,
        annotator: str,
        *,
        blind: bool = False,
        adjudicate: bool = False,
    ) -> None:
        super().__init__()
        self.adjudicate = adjudicate
        """Open on the adjudication screen (leads) instead of the annotate screen."""
        self.workspace = workspace
        self.repo = repo
        self.annotator = annotator
        self.blind = blind
        self.codebook: CodebookView = repo.codebook()
        annotate = workspace.section("annotate")
        self.context_before = int(annotate.get("context_before", 4))
        self.context_after = 1 if annotate.get("show_next", False) else 0
        self.keys: dict[str, str] = {k: str(v) for k, v in workspace.section("keys").items()}
        self.active_model = repo.artifacts.active()
        self.latency_probe: list[float] | None = None
        """Seconds from a save key to the next message painted, when a benchmark asks."""
        repo.ensure_annotator(annotator)

    def learning_settings(self) -> Any:
        from learning.settings import LearningSettings

        return LearningSettings.from_workspace(self.workspace)

    def on_mount(self) -> None:
        if self.adjudicate:
            from tui.screens.adjudicate import AdjudicateScreen

            self.push_screen(AdjudicateScreen())
        else:
            self.push_screen(AnnotateScreen(self.keys))

    def on_unmount(self) -> None:
        """A session that ends cleanly gives its claimed messages back at once."""
        self.repo.release_claims(self.annotator)

    @on(Worker.StateChanged)
    def _worker_failed(self, event: Worker.StateChanged) -> None:
        """One place for worker errors: say so, keep running."""
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            self.notify(
                f"{event.worker.description} failed: {event.worker.error}",
                severity="error",
                markup=False,
            )


def make_app(
    workspace: Path | None = None,
    db: str | None = None,
    annotator: str | None = None,
    *,
    blind: bool = False,
    adjudicate: bool = False,
) -> TechneApp:
    """The app for a workspace; the CLI and the tests both build it here."""
    ws = load_workspace(workspace, db)
    repo = ws.open_repository()
    return TechneApp(ws, repo, annotator or getpass.getuser(), blind=blind, adjudicate=adjudicate)
