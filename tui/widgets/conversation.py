"""The message being coded with the turns around it, always shown literally."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from store import MessageView


def literal(text: str) -> str:
    """Control bytes made visible (escape sequences must never reach the terminal)."""
    return "".join(
        ch if ch in "\n\t" or (ord(ch) >= 32 and ord(ch) != 127) else f"\\x{ord(ch):02x}"
        for ch in text
    )


def turn_text(message: MessageView, *, current: bool = False) -> Text:
    """One turn: the speaker in bold, then the text as plain characters (never markup)."""
    line = Text()
    style = "bold reverse" if current else "bold"
    line.append(f"{message.speaker or 'speaker'}: ", style=style)
    line.append(literal(message.text))
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
        body.append(
            f"conversation {message.conversation_external_id} · turn {message.position} · "
            f"id {message.external_id}\n",
            style="italic",
        )
        body.append_text(turn_text(message, current=True))
        self.update(body)
