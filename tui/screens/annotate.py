"""The annotate screen: one message, its context, the model's suggestion, one key to save."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.events import Resize
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Footer, ProgressBar, Static

from store import MessageView
from store.queue import Suggestion
from tui.safe import shown
from tui.screens.labelling import LabellingMixin, Undo
from tui.screens.navigation import NavigationMixin
from tui.screens.overlays import CodebookOverlay
from tui.screens.retrain import RetrainMixin
from tui.widgets.codebook_panel import CodebookPanel
from tui.widgets.conversation import ContextView, MessageCard, NextView, marks
from tui.widgets.suggestions import NONE, SuggestionList

if TYPE_CHECKING:
    from tui.app import TechneApp

NARROW = 100
"""At this many columns or fewer the codebook panel folds away (`?` shows it on top)."""
SHORT = 32
"""At this many rows or fewer the boxes lose their borders so more turns fit."""

RATE_AFTER_S = 300.0
"""The labels-per-hour rate shows once the session is this old."""

DEFAULT_KEYS = {
    "quit": ("q", "Quit"),
    "help": ("f1", "Help"),
    "accept": ("enter", "Save"),
    "skip": ("s", "Skip"),
    "flag": ("f", "Flag"),
    "note": ("n", "Note"),
    "undo": ("u,ctrl+z", "Undo"),
    "back": ("left", "Back"),
    "forward": ("right", "Forward"),
    "find": ("slash", "Find"),
    "retrain": ("r", "Retrain"),
    "blind": ("b", "Blind"),
    "codebook": ("question_mark", "Codebook"),
    "conversation": ("v", "Whole conversation"),
    "stats": ("c", "Stats"),
    "agreement": ("G", "Agreement"),
    "adjudicate": ("A", "Adjudicate"),
    "move_up": ("up,k", ""),
    "move_down": ("down,j", ""),
}


class AnnotateScreen(LabellingMixin, NavigationMixin, RetrainMixin, Screen[None]):
    """Shows one message at a time; every save is committed before the next appears."""

    blind: reactive[bool] = reactive(False)
    """Suggestions hidden until a choice is made (counters anchoring on the model)."""
    show_codebook: reactive[bool] = reactive(True)
    """Whether the codebook panel is visible."""

    def __init__(self, keys: dict[str, str] | None = None) -> None:
        super().__init__()
        for action, (default, description) in DEFAULT_KEYS.items():
            bound = (keys or {}).get(action, default)
            self._bindings.bind(bound, action, description, show=bool(description))
        self.queue: list[int] = []
        self.history: list[int] = []
        self.position = -1
        self.current: MessageView | None = None
        self.suggestion: Suggestion | None = None
        self.shown_at = time.monotonic()
        self.undo_stack: list[Undo] = []
        self.round_batch: list[int] = []
        self.coded: set[int] = set()
        self.saved = 0
        self.started = time.monotonic()
        self.retraining = threading.Event()
        self.key_at: float | None = None
        """When the key that led to the message on screen was handled (for latency probes)."""

    @property
    def techne(self) -> TechneApp:
        from tui.app import TechneApp

        assert isinstance(self.app, TechneApp)
        return self.app

    def compose(self) -> ComposeResult:
        app = self.techne
        yield Static(id="topbar")
        with Horizontal(id="main"):
            with Vertical(id="left"):
                with VerticalScroll(id="context-scroll"):
                    yield ContextView(id="context")
                yield MessageCard(id="message")
                yield NextView(id="next")
                yield SuggestionList(app.codebook, id="suggestions")
            yield CodebookPanel(id="codebook")
        yield ProgressBar(id="round-progress", show_eta=False)
        yield Static(id="statusline")
        yield Footer()

    def on_mount(self) -> None:
        app = self.techne
        self.blind = app.blind
        for index, technique in enumerate(app.codebook.techniques):
            if technique.hotkey:
                self._bindings.bind(technique.hotkey, f"choose({index})", show=False)
            if index < 9:
                self._bindings.bind(str(index + 1), f"choose({index})", show=False)
        self.query_one("#round-progress").display = False
        self.query_one("#statusline").display = False
        self.query_one(SuggestionList).counts = dict(app.repo.status()["labelled_per_technique"])
        self.round_batch = self._latest_batch()
        self.coded = {m for m in self.round_batch if app.repo.current_labels(m, app.annotator)}
        self.queue = app.repo.queue(app.annotator)
        self._advance()
        # An expert who stays on one message keeps it: renew the claim well before it expires.
        self.set_interval(max(5.0, app.repo.team.claim_minutes * 20), self._renew_claim)

    def _renew_claim(self) -> None:
        if self.current is not None and self.current.id not in self.coded:
            self.techne.repo.claim_next(self.techne.annotator, [self.current.id])

    def _latest_batch(self) -> list[int]:
        latest = self.techne.repo.artifacts.latest_round()
        return list(latest.queried_message_ids) if latest else []

    # -- layout -------------------------------------------------------------------------------

    def on_resize(self, event: Resize) -> None:
        """Fold the codebook panel away on narrow terminals, drop borders on short ones."""
        self.set_class(event.size.width <= NARROW, "narrow")
        self.set_class(event.size.height <= SHORT, "short")
        self.watch_show_codebook(self.show_codebook)

    @property
    def narrow(self) -> bool:
        return self.has_class("narrow")

    # -- showing ------------------------------------------------------------------------------

    def _show(self, message_id: int) -> None:
        app = self.techne
        repo = app.repo
        message = repo.message(message_id)
        self.current = message
        turns = repo.context(message.id, app.context_before, app.context_after)
        self.query_one(ContextView).show([t for t in turns if t.position < message.position])
        self.query_one(NextView).show([t for t in turns if t.position > message.position])
        self.query_one("#next").display = app.context_after > 0
        self.suggestion = repo.suggestion(message.id)
        mine = repo.current_labels(message.id, app.annotator)
        names = {t.key: t.name for t in app.codebook.techniques}
        self.query_one(MessageCard).show(
            message, marks(repo.events(message.id), app.annotator, names, mine)
        )
        keys = app.codebook.keys()
        if mine:
            selected = keys.index(mine[0]) if mine[0] in keys else 0
        elif self.blind:
            selected = NONE  # nothing model-derived before the expert's own choice
        elif self.suggestion is not None:
            top = self.suggestion.top_label
            selected = keys.index(top) if top in keys else 0
        else:
            selected = 0
        suggestions = self.query_one(SuggestionList)
        suggestions.revealed = not self.blind
        suggestions.show(self.suggestion, selected)
        if mine and app.codebook.multi_label:
            suggestions.toggled = set(mine)
            suggestions.refresh_rows()
        self._show_codebook_for(selected)
        self.query_one("#context-scroll", VerticalScroll).scroll_end(animate=False)
        self.shown_at = time.monotonic()
        self._update_topbar()
        probe = self.techne.latency_probe
        if self.key_at is not None and probe is not None:
            started, self.key_at = self.key_at, None
            self.call_after_refresh(lambda: probe.append(time.perf_counter() - started))

    def _show_codebook_for(self, index: int) -> None:
        techniques = self.techne.codebook.techniques
        self.query_one(CodebookPanel).show(techniques[index] if index != NONE else None)

    def _update_topbar(self) -> None:
        app = self.techne
        model = app.active_model
        elapsed = time.monotonic() - self.started
        bar = Text(no_wrap=True, overflow="ellipsis")
        bar.append(" Techne ", style="bold reverse")
        if self.blind:
            bar.append(" BLIND ", style="bold reverse")
        bar.append(f" {shown(app.annotator)} · {shown(app.codebook.key)} · ")
        bar.append(f"model {shown(model.tag) if model else 'none'} · ")
        total = len(self.history) + len(self.queue)
        bar.append(f"message {self.position + 1} of {total} · " if self.current else "done · ")
        if self.round_batch:
            done = sum(1 for m in self.round_batch if m in self.coded)
            bar.append(f"batch {done}/{len(self.round_batch)} · ")
        bar.append(f"{self.saved} saved")
        if elapsed >= RATE_AFTER_S:  # a rate over the first minutes says nothing
            bar.append(f", {self.saved / (elapsed / 3600):.0f}/h")
        self.query_one("#topbar", Static).update(bar)

    def _advance(self, refreshed: bool = False) -> None:
        """Show the next message: forward in this session's history, else the first queued
        message this annotator can claim (others may be coding the ones before it)."""
        if self.position + 1 < len(self.history):
            self.position += 1
            self._show(self.history[self.position])
            return
        app = self.techne
        candidates = [m for m in self.queue if m not in self.history]
        mid = app.repo.claim_next(app.annotator, candidates) if candidates else None
        if mid is not None:
            self.queue = candidates[candidates.index(mid) + 1 :]
            self.history.append(mid)
            self.position = len(self.history) - 1
            self._show(mid)
            return
        if not refreshed:
            self.queue = [m for m in app.repo.queue(app.annotator) if m not in self.history]
            self._advance(refreshed=True)
            return
        self.queue = []
        self.current = None
        self.query_one(MessageCard).update(
            Text("The queue is empty: every message is coded. Press r to retrain, q to quit.")
        )
        self.query_one(ContextView).update("")
        self.query_one(NextView).update("")
        self.query_one(SuggestionList).show(None, NONE)  # nothing to choose for
        self._show_codebook_for(NONE)
        self._update_topbar()

    # -- actions ------------------------------------------------------------------------------

    def action_choose(self, index: int) -> None:
        if self.current is None:
            return
        suggestions = self.query_one(SuggestionList)
        suggestions.selected = index
        if self.techne.codebook.multi_label:
            key = self.techne.codebook.techniques[index].key
            suggestions.toggled ^= {key}
            suggestions.refresh_rows()
        suggestions.revealed = True
        self._show_codebook_for(index)

    def action_move_up(self) -> None:
        suggestions = self.query_one(SuggestionList)
        suggestions.selected = max(0, suggestions.selected - 1)
        self._show_codebook_for(suggestions.selected)

    def action_move_down(self) -> None:
        suggestions = self.query_one(SuggestionList)
        suggestions.selected = min(
            len(self.techne.codebook.techniques) - 1, suggestions.selected + 1
        )
        self._show_codebook_for(suggestions.selected)

    def action_back(self) -> None:
        if self.position > 0:
            self.position -= 1
            self._show(self.history[self.position])

    def action_forward(self) -> None:
        if self.position + 1 < len(self.history):
            self.position += 1
            self._show(self.history[self.position])
        else:
            self._advance()

    def action_blind(self) -> None:
        """Blind on: the current message forgets the model's choice unless the expert has
        already chosen; blind off: the suggestion is shown again."""
        self.blind = not self.blind
        suggestions = self.query_one(SuggestionList)
        suggestions.revealed = not self.blind
        if self.blind and self.current is not None:
            if not self.techne.repo.current_labels(self.current.id, self.techne.annotator):
                suggestions.selected = NONE
                self._show_codebook_for(NONE)
        self._update_topbar()

    def action_codebook(self) -> None:
        """Wide: show or hide the panel. Narrow: the highlighted technique on top."""
        if self.narrow:
            index = self.query_one(SuggestionList).selected
            techniques = self.techne.codebook.techniques
            self.app.push_screen(CodebookOverlay(techniques[index] if index != NONE else None))
            return
        self.show_codebook = not self.show_codebook

    def watch_show_codebook(self, visible: bool) -> None:
        self.query_one(CodebookPanel).display = visible and not self.narrow

    def round_done(self) -> None:
        """After a round: the new model's suggestions and queue; the batch counter goes on
        from what this session coded of the previous batch."""
        app = self.techne
        app.active_model = app.repo.artifacts.active()
        self.queue = [m for m in app.repo.queue(app.annotator) if m not in self.history]
        done = [m for m in self.round_batch if m in self.coded]
        self.round_batch = done + [m for m in self._latest_batch() if m not in done]
        if self.current is not None:
            self.suggestion = app.repo.suggestion(self.current.id)
            suggestions = self.query_one(SuggestionList)
            suggestions.show(self.suggestion, suggestions.selected)
        self._update_topbar()
