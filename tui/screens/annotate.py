"""The annotate screen: one message, its context, the model's suggestion, one key to save."""

from __future__ import annotations

import threading
import time

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.events import Resize
from textual.reactive import reactive
from textual.widgets import Footer, ProgressBar, Static

from store import CodebookView, MessageView
from store.queue import Suggestion
from store.saving import MessageDisplay
from tui.messages import MessageShown
from tui.safe import shown
from tui.screens.base import TechneScreen, choose_bindings
from tui.screens.labelling import LabellingMixin
from tui.screens.navigation import NavigationMixin
from tui.screens.overlays import CodebookOverlay
from tui.screens.retrain import RetrainMixin
from tui.session import Session
from tui.widgets.codebook_panel import CodebookPanel
from tui.widgets.conversation import marks
from tui.widgets.message_pane import MessagePane
from tui.widgets.suggestions import NONE, SuggestionList

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
    "scroll_message_up": ("shift+up", ""),
    "scroll_message_down": ("shift+down", ""),
}


def annotate_bindings(codebook: CodebookView, keys: dict[str, str] | None) -> list[BindingType]:
    """Every action's key (the workspace's [keys] over the defaults), then the techniques'."""
    bindings: list[BindingType] = [
        Binding((keys or {}).get(action, default), action, description, show=bool(description))
        for action, (default, description) in DEFAULT_KEYS.items()
    ]
    return bindings + choose_bindings(codebook)


class AnnotateScreen(LabellingMixin, NavigationMixin, RetrainMixin, TechneScreen):
    """Shows one message at a time; every save is committed before the next appears.
    Open it with `AnnotateScreen.keyed(codebook, keys)()`: the keys depend on both."""

    blind: reactive[bool] = reactive(False)
    """Suggestions hidden until a choice is made (counters anchoring on the model)."""
    show_codebook: reactive[bool] = reactive(True)
    """Whether the codebook panel is visible."""

    @classmethod
    def keyed(
        cls, codebook: CodebookView, keys: dict[str, str] | None = None
    ) -> type[AnnotateScreen]:
        return cls.with_keys(annotate_bindings(codebook, keys))

    def __init__(self) -> None:
        super().__init__()
        self.session = Session()
        self.pane = MessagePane("context", "next")
        self.current: MessageView | None = None
        self.suggestion: Suggestion | None = None
        self.shown_at = time.monotonic()
        self.retraining = threading.Event()
        """Set while a round runs; a second `r` says so instead of starting another."""

    def compose(self) -> ComposeResult:
        app = self.techne
        yield Static(id="topbar")
        with Horizontal(id="main"):
            with Vertical(id="left"):
                # never focused: up/down move the technique choice even when the turns
                # before overflow their pane (the mouse still scrolls it)
                with VerticalScroll(id="context-scroll", can_focus=False):
                    yield self.pane.context
                yield self.pane.box
                yield self.pane.next
                yield SuggestionList(app.codebook, id="suggestions")
            yield CodebookPanel(id="codebook")
        yield ProgressBar(id="round-progress", show_eta=False)
        yield Static(id="statusline")
        yield Footer()

    def on_mount(self) -> None:
        app = self.techne
        repo = app.repo
        self.blind = app.blind
        self.query_one("#round-progress").display = False
        self.query_one("#statusline").display = False
        batch = self._latest_batch()
        self.session = Session(
            counts=dict(repo.status()["labelled_per_technique"]),
            batch=batch,
            coded=[m for m in batch if repo.current_labels(m, app.annotator)],
        )
        # the panel shows the session's own dict: every save and undo is on screen at once
        self.query_one(SuggestionList).counts = self.session.counts
        self.session.requeue(repo.queue(app.annotator))
        self._advance()
        # An expert who stays on one message keeps it: renew the claim well before it expires.
        self.set_interval(max(5.0, repo.team.claim_minutes * 20), self._renew_claim)

    def _renew_claim(self) -> None:
        if self.current is not None and self.current.id not in self.session.coded:
            self.techne.repo.claim_next(self.techne.annotator, [self.current.id])

    def _latest_batch(self) -> list[int]:
        latest = self.techne.repo.artifacts.latest_round()
        return list(latest.queried_message_ids) if latest else []

    # -- layout -------------------------------------------------------------------------------

    def on_resize(self, event: Resize) -> None:
        """Fold the codebook panel away on narrow terminals, drop borders on short ones."""
        super().on_resize(event)
        self.watch_show_codebook(self.show_codebook)

    # -- showing ------------------------------------------------------------------------------

    def _show(self, message_id: int) -> None:
        app = self.techne
        self._draw(app.repo.message_display(message_id, app.annotator, *self._turns_around()))

    def _turns_around(self) -> tuple[int, int]:
        return self.techne.context_before, self.techne.context_after

    def _draw(self, display: MessageDisplay) -> None:
        app = self.techne
        message, mine = display.message, display.mine
        self.current = message
        names = {t.key: t.name for t in app.codebook.techniques}
        mark = marks(display.events, app.annotator, names, mine)
        self.pane.show(message, display.context, mark)
        self.pane.next.display = app.context_after > 0
        self.suggestion = display.suggestion
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
        # made in the callback, so its `time` is the moment after the refresh that paints it
        self.call_after_refresh(lambda: self.post_message(MessageShown(message.id)))

    def _show_codebook_for(self, index: int) -> None:
        techniques = self.techne.codebook.techniques
        self.query_one(CodebookPanel).show(techniques[index] if index != NONE else None)

    def _update_topbar(self) -> None:
        app, session = self.techne, self.session
        model = app.active_model
        bar = Text(no_wrap=True, overflow="ellipsis")
        bar.append(" Techne ", style="bold reverse")
        if self.blind:
            bar.append(" BLIND ", style="bold reverse")
        bar.append(f" {shown(app.annotator)} · {shown(app.codebook.key)} · ")
        bar.append(f"model {shown(model.tag) if model else 'none'} · ")
        where = f"message {session.position + 1} of {session.total} · "
        bar.append(where if self.current else "done · ")
        if session.round_batch:
            bar.append(f"batch {session.batch_done()}/{len(session.round_batch)} · ")
        bar.append(f"{session.saved} saved")
        rate = session.rate()
        if rate is not None:  # a rate over the first minutes says nothing
            bar.append(f", {rate:.0f}/h")
        self.query_one("#topbar", Static).update(bar)

    def _advance(self, refreshed: bool = False) -> None:
        """Show the next message: forward in this session's history, else the first queued
        message this annotator can claim (others may be coding the ones before it)."""
        session = self.session
        if session.following() is not None:
            self._show(session.forward())
            return
        app = self.techne
        candidates = session.candidates()
        mid = app.repo.claim_next(app.annotator, candidates) if candidates else None
        if mid is not None:
            session.claimed(mid, candidates)
            self._show(mid)
            return
        if not refreshed:
            session.requeue(app.repo.queue(app.annotator))
            self._advance(refreshed=True)
            return
        self._queue_empty()

    def _moved_on(self, display: MessageDisplay | None, candidates: list[int]) -> None:
        """After a save: draw the message the store returned with it, else look further."""
        session = self.session
        if display is None:
            session.requeue([])  # none of the candidates could be claimed: ask again
            self._advance()
            return
        if session.following() is not None:
            session.forward()
        else:
            session.claimed(display.message.id, candidates)
        self._draw(display)

    def _queue_empty(self) -> None:
        self.session.requeue([])
        self.current = None
        self.pane.clear(
            "The queue is empty: every message is coded. Press r to retrain, q to quit."
        )
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

    def action_scroll_message_up(self) -> None:
        self.pane.scroll(-2)

    def action_scroll_message_down(self) -> None:
        self.pane.scroll(2)

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
        previous = self.session.back()
        if previous is not None:
            self._show(previous)

    def action_forward(self) -> None:
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
        self.session.new_round(app.repo.queue(app.annotator), self._latest_batch())
        if self.current is not None:
            self.suggestion = app.repo.suggestion(self.current.id)
            suggestions = self.query_one(SuggestionList)
            suggestions.show(self.suggestion, suggestions.selected)
        self._update_topbar()
