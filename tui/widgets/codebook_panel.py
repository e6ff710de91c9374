"""Definition and examples of the highlighted technique."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from store import TechniqueView


class CodebookPanel(Static):
    def show(self, technique: TechniqueView) -> None:
        body = Text()
        body.append(f"{technique.name}", style="bold")
        body.append(f"  ({technique.key}, key {technique.hotkey or '-'})\n\n")
        body.append(technique.definition + "\n\n")
        for example in technique.examples:
            body.append("• ")
            body.append(example + "\n")
        self.update(body)
