"""Saving from the annotate screen: enter, skip, flag, note and undo, each an event, with
the counters undo puts back."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.widgets import Static

from store import MessageView
from store.queue import Suggestion
from store.saving import MessageDisplay
from tui.failures import ENVIRONMENTAL, failure_text
from tui.safe import shown
from tui.screens.base import TechneScreen
from tui.screens.prompt import PromptScreen
from tui.session import Session
from tui.widgets.suggestions import NONE, SuggestionList

if TYPE_CHECKING:
    _Base = TechneScreen
else:
    _Base = object


class LabellingMixin(_Base):
    """Actions found by name along the AnnotateScreen's MRO."""

    if TYPE_CHECKING:
        session: Session
        current: MessageView | None
        suggestion: Suggestion | None
        shown_at: float
        blind: bool

        def _show(self, message_id: int) -> None: ...
        def _turns_around(self) -> tuple[int, int]: ...
        def _moved_on(self, display: MessageDisplay | None, candidates: list[int]) -> None: ...

    def _save_and_move_on(self, kind: str, labels: list[str] | None = None, **fields: Any) -> None:
        """Save a label or skip and show the next message, in one call to the store. When the
        store refuses (disk full, database gone) the error is shown in place and the message
        stays on screen, unconfirmed."""
        app, session = self.techne, self.session
        assert self.current is not None
        record = session.checkpoint(self.current.id)
        following = session.following()
        candidates = [] if following is not None else session.candidates()
        before, after = self._turns_around()
        try:
            saved = app.repo.save_label(
                self.current.id,
                app.annotator,
                kind,
                labels or [],
                model_version_id=self.suggestion.model_version_id if self.suggestion else None,
                seconds=round(time.monotonic() - self.shown_at, 3),
                following=following,
                candidates=candidates,
                before=before,
                after=after,
                **fields,
            )
        except ENVIRONMENTAL as exc:
            self._not_saved(exc)
            return
        if kind == "skip":
            session.saved_other(record, saved.event_id)
        else:
            session.labelled(record, saved.event_id, labels or [], saved.previous)
        self._moved_on(saved.next, candidates)

    def _add_event(self, kind: str, **fields: Any) -> int | None:
        """A flag or note event's id; None when the store refused it (said in place)."""
        app = self.techne
        assert self.current is not None
        try:
            return app.repo.add_event(
                self.current.id,
                app.annotator,
                kind,
                model_version_id=self.suggestion.model_version_id if self.suggestion else None,
                seconds=round(time.monotonic() - self.shown_at, 3),
                **fields,
            )
        except ENVIRONMENTAL as exc:
            self._not_saved(exc)
            return None

    def _not_saved(self, exc: BaseException) -> None:
        problem = f"NOT SAVED: {failure_text(exc)}"
        status = self.query_one("#statusline", Static)
        status.update(Text(shown(problem), style="bold"))
        status.display = True
        self.notify(problem, severity="error", markup=False)

    def action_accept(self) -> None:
        if self.current is None:
            return
        app = self.techne
        suggestions = self.query_one(SuggestionList)
        if app.codebook.multi_label:
            labels = [t.key for t in app.codebook.techniques if t.key in suggestions.toggled]
            if not labels:
                self.notify(
                    "Choose at least one technique (its key toggles it).", severity="warning"
                )
                return
        elif suggestions.selected == NONE:
            self.notify(
                "Choose a technique first (its digit or letter, or up/down): blind mode "
                "saves only your own choice.",
                severity="warning",
            )
            return
        else:
            labels = [app.codebook.techniques[suggestions.selected].key]
        accepted = (
            self.suggestion is not None and not self.blind and labels == [self.suggestion.top_label]
        )
        self._save_and_move_on("label", labels, accepted_suggestion=accepted)

    def action_skip(self) -> None:
        if self.current is None:
            return
        self._save_and_move_on("skip")

    def action_flag(self) -> None:
        if self.current is None:
            return

        def flagged(reason: str | None) -> None:
            if reason and self.current is not None:
                record = self.session.checkpoint(self.current.id)
                event_id = self._add_event("flag", reason=reason)
                if event_id is None:
                    return
                self.session.saved_other(record, event_id)
                self.notify("Flagged for a lead.")
                self._show(self.current.id)

        self.app.push_screen(PromptScreen("Why flag this message?", "reason"), flagged)

    def action_note(self) -> None:
        if self.current is None:
            return

        def noted(note: str | None) -> None:
            if note and self.current is not None:
                if self._add_event("note", note=note) is None:
                    return
                self.notify("Note saved.")
                self._show(self.current.id)

        self.app.push_screen(PromptScreen("Note on this message", "note"), noted)

    def action_undo(self) -> None:
        """Take back the last save (as an undo event), put every counter back as it was
        before that save, and show that message again."""
        record = self.session.take_back()
        if record is None:
            self.notify("Nothing to undo in this session.")
            return
        app = self.techne
        message_id = record.message_id
        try:
            app.repo.add_event(message_id, app.annotator, "undo", target_event_id=record.event_id)
        except ENVIRONMENTAL as exc:
            self.session.keep(record)
            self._not_saved(exc)
            return
        app.repo.claim_next(app.annotator, [message_id])  # hold it again while re-coding
        self.session.undone(record)
        self._show(message_id)
