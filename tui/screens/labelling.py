"""Saving from the annotate screen: enter, skip, flag, note and undo, each an event, with
the counters undo puts back."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.widgets import Static

from store import MessageView
from store.queue import Suggestion
from tui.failures import ENVIRONMENTAL, failure_text
from tui.messages import LabelSaved
from tui.safe import shown
from tui.screens.prompt import PromptScreen
from tui.widgets.suggestions import NONE, SuggestionList

if TYPE_CHECKING:
    from textual.screen import Screen

    from tui.app import TechneApp


if TYPE_CHECKING:
    _Base = Screen[None]
else:
    _Base = object


class LabellingMixin(_Base):
    """Actions found by name along the AnnotateScreen's MRO."""

    if TYPE_CHECKING:

        @property
        def techne(self) -> TechneApp: ...

        current: MessageView | None
        suggestion: Suggestion | None
        history: list[int]
        position: int
        shown_at: float
        key_at: float | None
        saved: int
        coded: set[int]
        blind: bool
        undo_stack: list[Undo]

        def _show(self, message_id: int) -> None: ...
        def _advance(self, refreshed: bool = False) -> None: ...

    def _save(self, kind: str, labels: list[str] | None = None, **fields: Any) -> int | None:
        """The saved event's id; None when the store refused it (disk full, database gone):
        then the error is shown in place and the message stays on screen, unconfirmed."""
        app = self.techne
        assert self.current is not None
        try:
            event_id = app.repo.add_event(
                self.current.id,
                app.annotator,
                kind,
                labels or [],
                model_version_id=self.suggestion.model_version_id if self.suggestion else None,
                seconds=round(time.monotonic() - self.shown_at, 3),
                **fields,
            )
        except ENVIRONMENTAL as exc:
            self._not_saved(exc)
            return None
        self.post_message(LabelSaved(self.current.id, event_id, kind))
        return event_id

    def _not_saved(self, exc: BaseException) -> None:
        problem = f"NOT SAVED: {failure_text(exc)}"
        status = self.query_one("#statusline", Static)
        status.update(Text(shown(problem), style="bold"))
        status.display = True
        self.notify(problem, severity="error", markup=False)

    def _counters(self, event_id: int, message_id: int) -> Undo:
        """Every counter as it is now, for undo to put back."""
        return Undo(
            event_id,
            message_id,
            dict(self.query_one(SuggestionList).counts),
            self.saved,
            message_id in self.coded,
        )

    def action_accept(self) -> None:
        if self.current is None:
            return
        self.key_at = time.perf_counter()
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
        had = app.repo.current_labels(self.current.id, app.annotator)
        record = self._counters(0, self.current.id)
        event_id = self._save("correct" if had else "label", labels, accepted_suggestion=accepted)
        if event_id is None:
            return
        record.event_id = event_id
        self.undo_stack.append(record)
        self.saved += 1
        self.coded.add(self.current.id)
        counts = suggestions.counts
        for label in labels:
            counts[label] = counts.get(label, 0) + 1
        for label in had or ():
            counts[label] = max(0, counts.get(label, 0) - 1)
        self._advance()

    def action_skip(self) -> None:
        if self.current is None:
            return
        record = self._counters(0, self.current.id)
        event_id = self._save("skip")
        if event_id is None:
            return
        record.event_id = event_id
        self.undo_stack.append(record)
        self._advance()

    def action_flag(self) -> None:
        if self.current is None:
            return

        def flagged(reason: str | None) -> None:
            if reason and self.current is not None:
                record = self._counters(0, self.current.id)
                event_id = self._save("flag", reason=reason)
                if event_id is None:
                    return
                record.event_id = event_id
                self.undo_stack.append(record)
                self.notify("Flagged for a lead.")
                self._show(self.current.id)

        self.app.push_screen(PromptScreen("Why flag this message?", "reason"), flagged)

    def action_note(self) -> None:
        if self.current is None:
            return

        def noted(note: str | None) -> None:
            if note and self.current is not None:
                if self._save("note", note=note) is None:
                    return
                self.notify("Note saved.")
                self._show(self.current.id)

        self.app.push_screen(PromptScreen("Note on this message", "note"), noted)

    def action_undo(self) -> None:
        """Take back the last save (as an undo event), put every counter back as it was
        before that save, and show that message again."""
        if not self.undo_stack:
            self.notify("Nothing to undo in this session.")
            return
        record = self.undo_stack.pop()
        app = self.techne
        message_id = record.message_id
        try:
            app.repo.add_event(message_id, app.annotator, "undo", target_event_id=record.event_id)
        except ENVIRONMENTAL as exc:
            self.undo_stack.append(record)
            self._not_saved(exc)
            return
        counts = self.query_one(SuggestionList).counts
        counts.clear()
        counts.update(record.counts)
        self.saved = record.saved
        if not record.coded:
            self.coded.discard(message_id)
        app.repo.claim_next(app.annotator, [message_id])  # hold it again while re-coding
        if message_id in self.history:
            self.position = self.history.index(message_id)
        else:
            self.history.insert(self.position + 1, message_id)
            self.position += 1
        self._show(message_id)


@dataclass
class Undo:
    """A save that undo can take back, with every counter as it was before it."""

    event_id: int
    message_id: int
    counts: dict[str, int] = field(default_factory=dict)
    saved: int = 0
    coded: bool = False
