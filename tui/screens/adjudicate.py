"""The adjudication screen: disputed messages, every coder's labels and the model's side by
side with notes and flags; the lead's decision is an `adjudicate` event (the gold label)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from store import Dispute
from tui.failures import ENVIRONMENTAL, failure_text
from tui.safe import literal, shown
from tui.screens.prompt import PromptScreen
from tui.widgets.conversation import ContextView, MessageCard

if TYPE_CHECKING:
    from tui.app import TechneApp


class AdjudicateScreen(Screen[None]):
    """Up/down picks a dispute, digits (or a technique's letter) pick the decision, enter saves.
    Opened by `techne adjudicate` or shift+a in the annotate screen (leads only)."""

    BINDINGS = [
        ("enter", "decide", "Decide"),
        ("n", "note", "Note"),
        ("v", "toggle_model", "Model disputes"),
        ("escape,q", "leave", "Back"),
    ]

    choice: reactive[int] = reactive(0)
    """Index of the technique the lead is about to decide on."""
    include_model: reactive[bool] = reactive(True)
    """List single-coder messages where the model disagrees too."""

    def __init__(self) -> None:
        super().__init__()
        self.disputes: list[Dispute] = []
        self.note: str | None = None
        self.decided = 0

    @property
    def techne(self) -> TechneApp:
        from tui.app import TechneApp

        assert isinstance(self.app, TechneApp)
        return self.app

    def compose(self) -> ComposeResult:
        yield Static(id="adjudicate-bar")
        with Horizontal(id="adjudicate-main"):
            yield DataTable(id="disputes", cursor_type="row", zebra_stripes=True)
            with Vertical(id="dispute-detail"):
                with VerticalScroll(id="dispute-context"):
                    yield ContextView(id="context")
                yield MessageCard(id="message")
                yield Static(id="coders")
                yield Static(id="decision")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("message", "why", "coders")
        for index, technique in enumerate(self.techne.codebook.techniques):
            if technique.hotkey:
                self._bindings.bind(technique.hotkey, f"choose({index})", show=False)
            if index < 9:
                self._bindings.bind(str(index + 1), f"choose({index})", show=False)
        self.reload()
        table.focus()

    def reload(self) -> None:
        repo = self.techne.repo
        self.disputes = repo.disputes(include_model=self.include_model)
        table = self.query_one(DataTable)
        table.clear()
        for d in self.disputes:
            table.add_row(
                str(d.message_id),
                literal(d.reason),
                literal(", ".join(sorted(d.coder_labels))),
                key=str(d.message_id),
            )
        self._update_bar()
        self._show_current()

    @property
    def current(self) -> Dispute | None:
        table = self.query_one(DataTable)
        if not self.disputes or table.cursor_row >= len(self.disputes):
            return None
        return self.disputes[table.cursor_row]

    @on(DataTable.RowSelected, "#disputes")
    def _dispute_selected(self) -> None:
        """Enter on the list saves the decision (the table owns the enter key)."""
        self.action_decide()

    @on(DataTable.RowHighlighted, "#disputes")
    def _dispute_highlighted(self) -> None:
        self.note = None
        self._show_current()

    def _show_current(self) -> None:
        dispute = self.current
        coders = self.query_one("#coders", Static)
        if dispute is None:
            self.query_one(MessageCard).update(Text("No open disputes. q goes back."))
            self.query_one(ContextView).update("")
            coders.update("")
            self.query_one("#decision", Static).update("")
            return
        repo, app = self.techne.repo, self.techne
        message = repo.message(dispute.message_id)
        turns = repo.context(message.id, app.context_before, 1)
        self.query_one(ContextView).show(
            [t for t in turns if t.position < message.position],
            [t for t in turns if t.position > message.position],
        )
        self.query_one(MessageCard).show(message)
        keys = app.codebook.keys()
        labels = list(dispute.coder_labels.values())
        first = labels[0][0] if labels and labels[0] else None
        self.choice = keys.index(first) if first in keys else 0
        coders.update(self._side_by_side(dispute))
        self.watch_choice(self.choice)

    def _side_by_side(self, dispute: Dispute) -> Table:
        events = self.techne.repo.events(dispute.message_id)
        tags = self.techne.repo.model_tags()
        table = Table(title="Coders and model", title_justify="left", expand=True)
        table.add_column("who")
        table.add_column("label")
        table.add_column("notes and flags")
        for name, labels in sorted(dispute.coder_labels.items()):
            remarks = [
                f"{e.kind}: {e.note or e.reason or ''}"
                for e in events
                if e.annotator == name and e.kind in ("note", "flag")
            ]
            table.add_row(literal(name), literal(", ".join(labels)), literal("; ".join(remarks)))
        others = [e for e in events if e.annotator not in dispute.coder_labels]
        for e in others:
            if e.kind in ("note", "flag"):
                table.add_row(literal(e.annotator), "", literal(f"{e.kind}: {e.note or e.reason}"))
        if dispute.model_label is not None:
            tag = tags.get(dispute.model_version_id or -1, "model")
            table.add_row(literal(f"model {tag}"), literal(dispute.model_label), "")
        return table

    def watch_choice(self, choice: int) -> None:
        if not self.is_mounted:
            return
        body = Text("Decision: ", style="bold")
        for index, technique in enumerate(self.techne.codebook.techniques):
            style = "reverse bold" if index == choice else ""
            keys = [str(index + 1)] if index < 9 else []
            keys += [technique.hotkey] if technique.hotkey else []
            body.append_text(literal(f" {'/'.join(keys)} {technique.name} ", style=style))
        if self.note:
            body.append("\nnote: ")
            body.append(literal(self.note))
        self.query_one("#decision", Static).update(body)

    def _update_bar(self) -> None:
        bar = Text()
        bar.append(" Adjudication ", style="bold reverse")
        bar.append(
            f"  {shown(self.techne.annotator)}  ·  {len(self.disputes)} open  ·  "
            f"{self.decided} decided this session  ·  model disputes "
            f"{'shown' if self.include_model else 'hidden'}  ·  digits choose, enter decides"
        )
        self.query_one("#adjudicate-bar", Static).update(bar)

    # -- actions ------------------------------------------------------------------------------

    def action_choose(self, index: int) -> None:
        self.choice = index
        self.watch_choice(index)

    def action_decide(self) -> None:
        dispute = self.current
        if dispute is None:
            return
        app = self.techne
        label = app.codebook.techniques[self.choice].key
        try:
            app.repo.add_event(
                dispute.message_id, app.annotator, "adjudicate", [label], note=self.note
            )
        except ENVIRONMENTAL as exc:  # the dispute stays open, the decision unsaved
            self.notify(f"NOT SAVED: {failure_text(exc)}", severity="error")
            return
        self.decided += 1
        row = self.query_one(DataTable).cursor_row
        self.note = None
        self.reload()
        if self.disputes:
            self.query_one(DataTable).move_cursor(row=min(row, len(self.disputes) - 1))
        self.notify(f"Message {dispute.message_id}: gold is {label}", markup=False)

    def action_note(self) -> None:
        def noted(note: str | None) -> None:
            if note:
                self.note = note
                self.watch_choice(self.choice)

        self.app.push_screen(PromptScreen("Note on the decision"), noted)

    def action_toggle_model(self) -> None:
        self.include_model = not self.include_model
        self.reload()

    def action_leave(self) -> None:
        if len(self.app.screen_stack) > 2:
            self.app.pop_screen()
        else:
            self.app.exit()
