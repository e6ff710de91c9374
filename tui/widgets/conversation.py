"""The message being coded with the turns around it, always shown literally."""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text
from textual.widgets import Static

from store import EventView, MessageView
from tui.safe import shown


def literal(text: str) -> str:
    """Control bytes made visible (escape sequences must never reach the terminal)."""
    return shown(text, multiline=True)


def turn_text(message: MessageView, *, current: bool = False) -> Text:
    """One turn: the speaker in bold, then the text as plain characters (never markup)."""
    line = Text()
    style = "bold reverse" if current else "bold"
    line.append(f"{shown(message.speaker or 'speaker')}: ", style=style)
    line.append(literal(message.text))
    return line


class ContextView(Static):
    """Turns before the message, dimmed (the nearest last)."""

    def show(self, before: list[MessageView], after: list[MessageView] | None = None) -> None:
        body = Text()
        for turn in before:
            body.append_text(turn_text(turn))
            body.append("\n")
        if after:
            body.append("— next —\n", style="italic")
            for turn in after:
                body.append_text(turn_text(turn))
                body.append("\n")
        body.rstrip()
        self.update(
            body if body.plain else Text("(first turn of the conversation)", style="italic")
        )


class NextView(Static):
    """Turns after the message (`[ui] context_after`), dimmed."""

    def show(self, after: list[MessageView]) -> None:
        body = Text()
        for turn in after:
            body.append_text(turn_text(turn))
            body.append("\n")
        body.rstrip()
        self.update(body if body.plain else Text("(last turn of the conversation)", style="italic"))


def marks(
    events: Iterable[EventView],
    annotator: str,
    names: dict[str, str],
    labels: tuple[str, ...] | None,
) -> Text:
    """What this annotator left on a message: their current label, flags and notes (undone
    ones are gone)."""
    events = list(events)
    undone = {e.target_event_id for e in events if e.kind == "undo"}
    mine = [e for e in events if e.annotator == annotator and e.id not in undone]
    out = Text()
    if labels:
        out.append("your label: ", style="bold")
        out.append(", ".join(shown(names.get(k, k)) for k in labels))
        out.append("   ")
    for e in mine:
        if e.kind == "flag":
            out.append("⚑ flagged: ", style="bold")
            out.append(shown(e.reason or ""))
            out.append("   ")
        elif e.kind == "note":
            out.append("✎ note: ", style="bold")
            out.append(shown(e.note or ""))
            out.append("   ")
    out.rstrip()
    return out


class MessageCard(Static):
    """The therapist message to code, with where it comes from and the coder's own marks."""

    def show(self, message: MessageView, mark: Text | None = None) -> None:
        body = Text()
        body.append(
            f"{shown(message.conversation_external_id)}:{message.position} · "
            f"id {shown(message.external_id)}",
            style="italic",
        )
        if mark is not None and mark.plain:
            body.append("   ")
            body.append_text(mark)
        body.append("\n")
        body.append_text(turn_text(message, current=True))
        self.update(body)
