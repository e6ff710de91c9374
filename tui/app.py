"""The Textual app: a thin shell that owns the workspace and shows the annotate screen."""

from __future__ import annotations

import asyncio
import atexit
import gc
import getpass
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import App
from textual.notifications import SeverityLevel
from textual.worker import Worker, WorkerState, get_current_worker

from store import CodebookView, Repository, Workspace, WorkspaceError, load_workspace
from tui.messages import EncoderRefreshed, MessageShown
from tui.refresh import BackgroundRefresh
from tui.safe import clip, shown
from tui.screens.annotate import AnnotateScreen

WARM_ROLES = ("maintainer", "lead")
"""Roles whose sessions load the learning code in the background: they retrain rounds.
Experts' sessions (many on a shared server) do not pay its memory."""
WARM_AFTER_S = 2.0


class DaemonExecutor(ThreadPoolExecutor):
    """Runs each call in its own daemon thread; shutting down waits for none of them.

    asyncio's default executor joins its threads when the event loop closes, so `q` would
    wait for a warm-up import or a retrain round (seconds) on a blank screen."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()

        def run() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as exc:  # handed to the awaiting worker
                future.set_exception(exc)

        threading.Thread(target=run, daemon=True, name="techne-worker").start()
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Nothing to join: the threads are daemons."""


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
        annotate, ui = workspace.section("annotate"), workspace.section("ui")
        self.context_before = int(ui.get("context_before", annotate.get("context_before", 4)))
        self.context_after = int(ui.get("context_after", 1))
        """Turns after the message (`[ui] context_after`): coders read the reply too."""
        self.keys: dict[str, str] = {k: str(v) for k, v in workspace.section("keys").items()}
        self.active_model = repo.artifacts.active()
        self.learning_warmed = False
        """Whether the round code was loaded in the background (maintainers and leads)."""
        self.startup_frozen = False
        """Whether start-up's objects are frozen out of garbage collection (on_message_shown)."""
        self.encoder_refresh = BackgroundRefresh()
        """The encoder refresh this app started in the background, if any."""
        repo.ensure_annotator(annotator)

    def run(self, *args: Any, **kwargs: Any) -> None:
        """Run until `q`; the process then exits without a last garbage collection."""
        try:
            return super().run(*args, **kwargs)
        finally:
            # Tearing down SQLModel/SQLAlchemy/Textual's objects one collection at a time
            # took 0.5 s after the screen was gone; frozen, they go with the process.
            atexit.register(gc.freeze)

    def learning_settings(self) -> Any:
        from learning.settings import LearningSettings

        return LearningSettings.from_workspace(self.workspace)

    def on_mount(self) -> None:
        # Background threads never hold up quitting: a warm-up import or a round in flight is
        # abandoned with the process (every label is already committed; a round commits its
        # version in one transaction or not at all).
        asyncio.get_running_loop().set_default_executor(DaemonExecutor())
        if self.adjudicate:
            from tui.screens.adjudicate import AdjudicateScreen

            self.push_screen(AdjudicateScreen.keyed(self.codebook)())
        else:
            self.push_screen(AnnotateScreen.keyed(self.codebook, self.keys)())
        if self.repo.annotators().get(self.annotator) in WARM_ROLES:
            self._warm_learning(WARM_AFTER_S)

    def on_message_shown(self, _: MessageShown) -> None:
        """Once the first message is up, freeze what start-up made (Textual, SQLAlchemy, the
        queue and message index): a full garbage collection then scans only what came
        after, instead of pausing a keypress for 0.3 s every thirty saves or so."""
        if not self.startup_frozen:
            gc.freeze()
            self.startup_frozen = True

    @work(thread=True, exit_on_error=False, group="warm", description="load the learning code")
    def _warm_learning(self, after_s: float) -> None:
        """Import the round code (scikit-learn, small-text: 1.5-2 s in a fresh process)
        `after_s` seconds after the screen is up, so a maintainer's first retrain is as fast
        as the ones after it. A worker from the start: tests wait on it, not on a clock."""
        time.sleep(after_s)
        if get_current_worker().is_cancelled:
            return
        import learning.rounds  # noqa: F401
        from learning import small_text_core

        if self.learning_settings().backend == "embed":
            small_text_core.load()
        self.learning_warmed = True

    def action_help(self) -> None:
        """Every key of the screen on top, in a window over it."""
        from tui.screens.overlays import HelpScreen

        self.push_screen(HelpScreen(self.screen.active_bindings))

    def refresh_encoder_if_due(self, trained_on: int) -> None:
        """After a round: start the encoder refresh in the background when its labels call
        for one (`[learning] encoder_refresh_from`, then at each doubling) and none runs."""
        from learning.tuned import encoder_refresh_due

        if self.encoder_refresh.running:
            return
        try:
            settings = self.learning_settings()
            models = self.workspace.models_dir
            if not encoder_refresh_due(models, settings, trained_on, self.codebook):
                return
            process = self.encoder_refresh.start(self.workspace)
        except (OSError, ValueError, KeyError, WorkspaceError) as exc:  # labelling goes on
            self.notify(clip(f"Encoder refresh not started: {exc}", 500), severity="error")
            return
        self.notify(
            f"Refreshing the encoder on {trained_on} labels in the background (minutes); "
            "keep labelling: the next retrain after it uses it."
        )
        self._wait_for_refresh(process)

    @work(thread=True, exit_on_error=False, group="refresh", description="Encoder refresh")
    def _wait_for_refresh(self, process: Any) -> None:
        report = self.encoder_refresh.wait(process)
        if report is not None:
            total = float(sum(report.seconds.values()))
            self.post_message(EncoderRefreshed(report.encoder, report.labels, total))

    def on_encoder_refreshed(self, message: EncoderRefreshed) -> None:
        self.notify(
            f"Encoder {message.encoder} is ready (fine-tuned on {message.labels} labels in "
            f"{message.seconds:.0f} s): the next retrain uses it.",
            markup=False,
        )

    def on_unmount(self) -> None:
        """A session that ends cleanly gives its claimed messages back at once, and stops a
        refresh it started (a later round starts it again)."""
        self.encoder_refresh.stop()
        self.repo.release_claims(self.annotator)

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        """Every notification shown literally: messages quote data (names, search text, error
        messages that quote input), so markup is never read and unsafe characters are escaped."""
        super().notify(
            shown(message, multiline=True),
            title=shown(title),
            severity=severity,
            timeout=timeout,
            markup=False,
        )

    @on(Worker.StateChanged)
    def _worker_failed(self, event: Worker.StateChanged) -> None:
        """One place for worker errors: say so, keep running."""
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            self.notify(
                clip(f"{event.worker.description} failed: {event.worker.error}", 500),
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
