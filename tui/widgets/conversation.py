"""The message being coded with the turns around it, always shown literally."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from store import MessageView
from tui.safe import literal


def turn_text(message: MessageView, *, current: bool = False) -> Text:
    """One turn: the speaker in bold, then the text as plain characters (never markup)."""
    line = Text()
    style = "bold reverse" if current else "bold"
    line.append_text(literal(f"{message.speaker or 'speaker'}: ", style=style))
    line.append_text(literal(message.text, multiline=True))
    return line


class ContextView(Static):
    """Turns before (and optionally after) the message, dimmed."""

    def show(self, before: list[MessageView], after: list[MessageView]) -> None:
        body = Text()
        for turn in before:
            body.append_text(turn_text(turn))
            body.append("\n")
        if after:
            body.append("— next —\n", style="italic")
            for turn in after:
                body.append_text(turn_text(turn))
                body.append("\n")
        self.update(
            body if body.plain else Text("(first turn of the conversation)", style="italic")
        )


class MessageCard(Static):
    """The therapist message to code, with where it comes from."""

    def show(self, message: MessageView) -> None:
        body = Text()
        body.append_text(
            literal(
                f"conversation {message.conversation_external_id} · turn {message.position} · "
                f"id {message.external_id}",
                style="italic",
            )
        )
        body.append("\n")
        body.append_text(turn_text(message, current=True))
        self.update(body)
