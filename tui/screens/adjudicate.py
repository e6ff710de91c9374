"""The adjudication screen: disputed messages, every coder's labels and the model's side by
side with notes and flags; the lead's decision is an `adjudicate` event (the gold label)."""

from __future__ import annotations

from rich import box
from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.reactive import reactive
from textual.widgets import DataTable, Footer, Static

from store import CodebookView, Dispute
from tui.failures import ENVIRONMENTAL, failure_text
from tui.safe import literal, shown
from tui.screens.base import TechneScreen, choose_bindings
from tui.screens.prompt import PromptScreen
from tui.widgets.message_pane import MessagePane

NONE = -1
"""No decision chosen yet: enter refuses."""


class AdjudicateScreen(TechneScreen):
    """Up/down picks a dispute, digits (or a technique's letter) pick the decision, enter saves.
    Opened by `techne adjudicate` or shift+a in the annotate screen (leads only), as
    `AdjudicateScreen.keyed(codebook)()`: the technique keys depend on the codebook. Narrow
    terminals put the dispute list above the detail; short ones take the message's box."""

    BINDINGS = [
        ("q,escape", "leave", "Quit/back"),
        ("f1", "app.help", "Help"),
        ("enter", "decide", "Decide"),
        ("n", "note", "Note"),
        ("v", "toggle_model", "Model disputes"),
        Binding("shift+up", "scroll_message(-2)", show=False),
        Binding("shift+down", "scroll_message(2)", show=False),
    ]

    choice: reactive[int] = reactive(NONE)
    """Index of the technique the lead is about to decide on (NONE until they choose)."""
    include_model: reactive[bool] = reactive(True)
    """List single-coder messages where the model disagrees too."""

    def __init__(self) -> None:
        super().__init__()
        self.disputes: list[Dispute] = []
        self.note: str | None = None
        self.decided = 0
        self.pane = MessagePane("dispute-context", "dispute-next")

    @classmethod
    def keyed(cls, codebook: CodebookView) -> type[AdjudicateScreen]:
        return cls.with_keys(choose_bindings(codebook))

    def compose(self) -> ComposeResult:
        yield Static(id="adjudicate-bar")
        with Horizontal(id="adjudicate-main"):
            yield DataTable(id="disputes", cursor_type="row", zebra_stripes=True)
            with VerticalScroll(id="dispute-detail"):
                yield self.pane.context
                yield self.pane.box
                yield self.pane.next
                yield Static(id="coders")
        yield Static(id="decision")
        yield Footer()

    def action_scroll_message(self, lines: int) -> None:
        """A message longer than its box (short terminals) scrolls by keyboard."""
        self.pane.scroll(lines)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("message", "why", "coders")
        self.reload()
        table.focus()

    def reload(self) -> None:
        repo = self.techne.repo
        self.disputes = repo.disputes(include_model=self.include_model)
        table = self.query_one(DataTable)
        table.clear()
        for d in self.disputes:
            message = repo.message(d.message_id)
            table.add_row(
                literal(f"{message.conversation_external_id}:{message.position}"),
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
            self.pane.clear("No open disputes. q goes back.")
            coders.update("")
            self.query_one("#decision", Static).update("")
            return
        repo, app = self.techne.repo, self.techne
        message = repo.message(dispute.message_id)
        turns = repo.context(message.id, app.context_before, max(1, app.context_after))
        self.pane.show(message, turns)
        self.choice = NONE  # the lead decides explicitly; nothing is pre-chosen
        coders.update(self._side_by_side(dispute))
        self.watch_choice(self.choice)

    def _side_by_side(self, dispute: Dispute) -> Table:
        events = self.techne.repo.events(dispute.message_id)
        tags = self.techne.repo.model_tags()
        names = {t.key: t.name for t in self.techne.codebook.techniques}
        table = Table(
            expand=True,
            box=box.SIMPLE_HEAD,
            show_edge=False,
        )
        table.add_column("coder or model")
        table.add_column("label")
        table.add_column("notes and flags")
        for name, labels in sorted(dispute.coder_labels.items()):
            remarks = [
                f"{e.kind}: {e.note or e.reason or ''}"
                for e in events
                if e.annotator == name and e.kind in ("note", "flag")
            ]
            table.add_row(
                literal(name),
                literal(", ".join(names.get(k, k) for k in labels)),
                literal("; ".join(remarks)),
            )
        others = [e for e in events if e.annotator not in dispute.coder_labels]
        for e in others:
            if e.kind in ("note", "flag"):
                table.add_row(literal(e.annotator), "", literal(f"{e.kind}: {e.note or e.reason}"))
        if dispute.model_label is not None:
            tag = tags.get(dispute.model_version_id or -1, "model")
            label = dispute.model_label
            table.add_row(literal(f"model {tag}"), literal(names.get(label, label)), "")
        return table

    def watch_choice(self, choice: int) -> None:
        if not self.is_mounted:
            return
        techniques = self.techne.codebook.techniques
        body = Text()
        if choice == NONE:
            body.append(" Decision: none yet ", style="bold reverse")
            body.append(" a digit or letter chooses, enter saves")
        else:
            body.append(f" Decision: {shown(techniques[choice].name)} ", style="bold reverse")
            body.append(" enter saves it as gold")
        if self.note:
            body.append("\nnote: ")
            body.append(literal(self.note))
        body.append("\n")
        for index, technique in enumerate(techniques):
            keys = [str(index + 1)] if index < 9 else []
            keys += [technique.hotkey] if technique.hotkey else []
            entry = f"{'/'.join(keys)} {shown(technique.name)}"
            if index == choice:
                body.append(f"▶{entry}◀", style="reverse bold")
            else:
                body.append(f" {entry} ")
            body.append(" ")
        self.query_one("#decision", Static).update(body)

    def _update_bar(self) -> None:
        bar = Text()
        bar.append(" Adjudication ", style="bold reverse")
        bar.append(
            f"  {shown(self.techne.annotator)}  ·  {len(self.disputes)} open  ·  "
            f"{self.decided} decided this session  ·  model disputes "
            f"{'shown' if self.include_model else 'hidden'}"
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
        if self.choice == NONE:
            self.notify(
                "Choose the decision first: a digit or a technique's letter, then enter.",
                severity="warning",
            )
            return
        app = self.techne
        technique = app.codebook.techniques[self.choice]
        label = technique.key
        message = app.repo.message(dispute.message_id)
        try:
            app.repo.add_event(
                dispute.message_id, app.annotator, "adjudicate", [label], note=self.note
            )
        except ENVIRONMENTAL as exc:  # the dispute stays open, the decision unsaved
            self.notify(f"NOT SAVED: {failure_text(exc)}", severity="error", markup=False)
            return
        self.decided += 1
        row = self.query_one(DataTable).cursor_row
        self.note = None
        self.reload()
        if self.disputes:
            self.query_one(DataTable).move_cursor(row=min(row, len(self.disputes) - 1))
        where = shown(f"{message.conversation_external_id}:{message.position}")
        self.notify(f"{where}: gold is {shown(technique.name)}", markup=False)

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
