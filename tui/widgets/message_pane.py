"""The message being coded between the turns before and after it, for the annotate and the
adjudication screens alike."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.containers import VerticalScroll

from store import MessageView
from tui.widgets.conversation import ContextView, MessageCard, NextView


class MessagePane:
    """Three widgets (turns before, the message in its box, turns after) shown together.
    Each screen places them in its own layout (they sit in different scroll containers), so
    the pane hands them out rather than wrapping them in a container of its own."""

    def __init__(self, context_id: str, next_id: str) -> None:
        self.context = ContextView(id=context_id)
        self.card = MessageCard(id="message")
        self.box = VerticalScroll(self.card, id="message-box", can_focus=False)
        """The card in a box of bounded height that scrolls (by keyboard: `scroll`); never
        focused, so the screen's keys stay the screen's."""
        self.next = NextView(id=next_id)

    def show(
        self, message: MessageView, turns: Sequence[MessageView], mark: Text | None = None
    ) -> None:
        """The message, with `turns` of its conversation (itself included) split around it."""
        self.context.show([t for t in turns if t.position < message.position])
        self.next.show([t for t in turns if t.position > message.position])
        self.card.show(message, mark)
        self.box.scroll_home(animate=False)

    def scroll(self, lines: int) -> None:
        """Scroll a message longer than its box (shift+up / shift+down in both screens)."""
        self.box.scroll_relative(y=lines, animate=False)

    def clear(self, note: str) -> None:
        """No message: `note` in its place, no turns around it."""
        self.card.update(Text(note))
        self.context.update("")
        self.next.update("")
