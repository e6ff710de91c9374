"""Definition and examples of the highlighted technique."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from store import TechniqueView
from tui.safe import literal


class CodebookPanel(Static):
    def show(self, technique: TechniqueView) -> None:
        body = Text()
        body.append_text(literal(technique.name, style="bold"))
        body.append_text(literal(f"  ({technique.key}, key {technique.hotkey or '-'})"))
        body.append("\n\n")
        body.append_text(literal(technique.definition, multiline=True))
        body.append("\n\n")
        for example in technique.examples:
            body.append("• ")
            body.append_text(literal(example, multiline=True))
            body.append("\n")
        self.update(body)
