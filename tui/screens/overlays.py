"""Screens shown over the annotate screen: the codebook entry (narrow terminals), the keys,
and the whole conversation with the message highlighted."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import ActiveBinding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Static

from store import MessageView, TechniqueView
from tui.safe import shown
from tui.widgets.codebook_panel import CodebookPanel
from tui.widgets.conversation import turn_text


class CodebookOverlay(ModalScreen[None]):
    """The highlighted technique's codebook entry on top of the screen; ? or escape closes."""

    BINDINGS = [("escape,question_mark,q", "dismiss", "Close")]

    def __init__(self, technique: TechniqueView | None) -> None:
        super().__init__()
        self.technique = technique

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="codebook-overlay"):
            yield CodebookPanel(id="codebook-entry")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(CodebookPanel).show(self.technique)
        self.query_one("#codebook-overlay").border_title = "Codebook"


class HelpScreen(ModalScreen[None]):
    """Every key of the screen below it; escape, q or f1 closes."""

    BINDINGS = [("escape,f1,q", "dismiss", "Close")]

    def __init__(self, bindings: dict[str, ActiveBinding]) -> None:
        super().__init__()
        self.bindings = bindings

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Static(id="help-keys")
        yield Footer()

    def on_mount(self) -> None:
        body = Text()
        seen: set[str] = set()
        for active in self.bindings.values():
            binding = active.binding
            if not binding.show or not binding.description or binding.action in seen:
                continue
            seen.add(binding.action)
            body.append(f"{self.app.get_key_display(binding):>8}  ", style="bold")
            body.append(shown(binding.description) + "\n")
        body.append("\n1-9 or a technique's letter chooses it; up/down move the highlight;")
        body.append("\nshift+up/down scroll a message longer than its box.")
        self.query_one("#help-keys", Static).update(body)
        self.query_one("#help").border_title = "Keys"


class ConversationScreen(Screen[None]):
    """The whole conversation, one turn after another, the message being coded highlighted
    and scrolled into view; v or escape goes back."""

    BINDINGS = [("escape,v,q", "app.pop_screen", "Back to the message")]

    def __init__(self, turns: list[MessageView], current: int) -> None:
        super().__init__()
        self.turns = turns
        self.current = current

    def compose(self) -> ComposeResult:
        title = self.turns[0].conversation_external_id if self.turns else ""
        yield Static(
            Text(f" Conversation {shown(title)} · {len(self.turns)} turns ", style="bold reverse"),
            id="conversation-bar",
        )
        with VerticalScroll(id="conversation"):
            for turn in self.turns:
                here = turn.id == self.current
                line = Text(f"{turn.position:>3} ", style="dim")
                line.append_text(turn_text(turn, current=here))
                yield Static(line, classes="turn current" if here else "turn")
        yield Footer()

    def on_mount(self) -> None:
        for widget in self.query(".current"):
            self.call_after_refresh(
                lambda w=widget: self.query_one("#conversation", VerticalScroll).scroll_to_widget(
                    w, animate=False, center=True
                )
            )
