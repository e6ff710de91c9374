"""Definition and examples of the highlighted technique."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from store import TechniqueView
from tui.safe import shown


def technique_text(technique: TechniqueView) -> Text:
    """A technique's name, key, hotkey, definition and examples, as literal text."""
    body = Text()
    body.append(shown(technique.name), style="bold")
    body.append(f"  ({shown(technique.key)}, key {shown(technique.hotkey or '-')})\n\n")
    body.append(shown(technique.definition, multiline=True) + "\n\n")
    for example in technique.examples:
        body.append("• ")
        body.append(shown(example, multiline=True) + "\n")
    return body


class CodebookPanel(Static):
    def show(self, technique: TechniqueView | None) -> None:
        """The technique's entry; None (nothing chosen yet, as in blind mode) says how to choose."""
        if technique is None:
            self.update(
                Text(
                    "Choose a technique (its digit or letter, or up/down): its definition "
                    "appears here.",
                    style="italic",
                )
            )
            return
        self.update(technique_text(technique))
