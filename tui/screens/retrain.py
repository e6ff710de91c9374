"""Retraining from the annotate screen: one round at a time, in the background, and none when
no gold label changed since the active model."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from rich.text import Text
from textual.widgets import ProgressBar, Static
from textual.worker import Worker, WorkerState

from tui.messages import RoundFinished, RoundProgressed, RoundSkipped
from tui.safe import shown
from tui.screens.base import TechneScreen


def trained_on(metrics: dict[str, object]) -> int | None:
    """How many gold labels a model version was trained and evaluated on (None: unknown)."""
    train, held_out = metrics.get("train_size"), metrics.get("eval_size")
    if isinstance(train, int) and isinstance(held_out, int):
        return train + held_out
    return None


if TYPE_CHECKING:
    _Base = TechneScreen
else:
    _Base = object


class RetrainMixin(_Base):
    """`r` on the annotate screen. Handlers are found by name along the MRO."""

    retraining: threading.Event
    """Set while a round runs; a second `r` says so instead of starting another."""

    if TYPE_CHECKING:

        def round_done(self) -> None: ...

    def action_retrain(self) -> None:
        if self.retraining.is_set():
            self.notify("Already retraining: one round at a time.")
            return
        app = self.techne
        active = app.repo.artifacts.active()
        if active is not None:
            gold = app.repo.status()["labelled"]
            if trained_on(active.metrics) == gold:
                self.notify(
                    f"No new gold labels since {active.tag} ({gold} labels): nothing to retrain.",
                    markup=False,
                )
                self.post_message(RoundSkipped(active.tag))
                return
        self.retraining.set()
        bar = self.query_one("#round-progress", ProgressBar)
        bar.display = True
        bar.update(total=1.0, progress=0.0)
        status = self.query_one("#statusline", Static)
        status.display = True
        status.update("Retraining… keep labelling.")
        self.run_worker(
            self._retrain_model,
            thread=True,
            exit_on_error=False,
            group="retrain",
            description="Retrain",
        )

    def _retrain_model(self) -> None:
        """A round; a failure goes to the app's one handler for worker errors (the old model
        stays active) and `on_worker_state_changed` clears the progress bar."""
        from learning.rounds import NoNewLabels, run_round

        app = self.techne

        def progress(stage: str, fraction: float) -> None:
            self.post_message(RoundProgressed(stage, fraction))

        try:
            result = run_round(
                app.repo, app.workspace.models_dir, app.learning_settings(), progress
            )
        except NoNewLabels:  # the learning side registered nothing: no new gold labels
            self.post_message(RoundSkipped(None))
            return
        model = getattr(result, "model", None)
        if model is None:  # the learning side registered nothing: no new gold labels
            self.post_message(RoundSkipped(None))
            return
        trained = result.metrics.get("train_size")
        self.post_message(
            RoundFinished(
                model.tag,
                result.metrics.get("macro_f1"),
                len(result.queried),
                trained if isinstance(trained, int) else None,
            )
        )

    def on_round_progressed(self, message: RoundProgressed) -> None:
        self.query_one("#round-progress", ProgressBar).update(progress=message.fraction)
        self.query_one("#statusline", Static).update(Text(shown(f"Retraining: {message.stage}…")))

    def _round_over(self, line: str) -> None:
        self.retraining.clear()
        self.query_one("#round-progress").display = False
        status = self.query_one("#statusline", Static)
        status.update(Text(shown(line)))
        status.display = bool(line)

    def on_round_finished(self, message: RoundFinished) -> None:
        """Fresh suggestions and a re-ranked queue, without leaving the current message."""
        f1 = f"{message.macro_f1:.3f}" if isinstance(message.macro_f1, float) else "n/a"
        self._round_over(
            f"Model {message.tag} is active (held-out macro-F1 {f1}); {message.queued} queued."
        )
        self.round_done()
        if message.trained_on is not None:
            self.techne.refresh_encoder_if_due(message.trained_on)

    def on_round_skipped(self, message: RoundSkipped) -> None:
        if message.tag is None:  # said by the learning side after the round started
            self.notify("No new gold labels since the active model: no new version.")
        self._round_over("")

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The round raised: the app says so (one handler for every worker), the screen
        puts its progress bar away."""
        if event.worker.group == "retrain" and event.state == WorkerState.ERROR:
            self._round_over("")
