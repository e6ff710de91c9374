"""Every technique with the model's probability as a bar; one row is selected."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from store import CodebookView
from store.queue import Suggestion
from tui.safe import literal, shown

BAR = 20


class SuggestionList(Static):
    """Rows: digit, hotkey, name, probability bar. The selection is what `enter` saves."""

    selected: reactive[int] = reactive(0)
    """Index of the highlighted technique."""
    revealed: reactive[bool] = reactive(True)
    """False in blind mode until the annotator has chosen."""

    def __init__(self, codebook: CodebookView, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.codebook = codebook
        self.suggestion: Suggestion | None = None
        self.toggled: set[str] = set()
        self.counts: dict[str, int] = {}
        """Gold labels per technique, shown against the codebook's targets."""

    def show(self, suggestion: Suggestion | None, selected: int) -> None:
        self.suggestion = suggestion
        self.toggled = set()
        self.selected = selected
        self.refresh_rows()

    def watch_selected(self, _: int) -> None:
        self.refresh_rows()

    def watch_revealed(self, _: bool) -> None:
        self.refresh_rows()

    def refresh_rows(self) -> None:
        body = Text()
        s = self.suggestion
        if s is None:
            body.append("no suggestion yet (retrain with r)\n", style="italic")
        elif not self.revealed:
            body.append("blind mode: suggestion hidden until you choose\n", style="italic")
        else:
            body.append_text(literal(f"suggested by {s.model_tag}", style="italic"))
            if s.stale:
                body.append("  STALE: a newer model is active", style="bold")
            body.append("\n")
        for i, t in enumerate(self.codebook.techniques):
            mark = "▶" if i == self.selected else " "
            if self.codebook.multi_label:
                mark += "☑" if t.key in self.toggled else "☐"
            digit = str(i + 1) if i < 9 else " "
            row = literal(f"{mark} {digit} [{shown(t.hotkey or ' ')}] {shown(t.name):<28}")
            if s is not None and self.revealed:
                p = float(s.probabilities.get(t.key, 0.0))
                row.append("█" * round(p * BAR) + "·" * (BAR - round(p * BAR)))
                row.append(f" {p:5.2f}")
            else:
                row.append(" " * (BAR + 6))
            if t.target:
                row.append(f"  {self.counts.get(t.key, 0):>4}/{t.target}")
            if i == self.selected:
                row.stylize("reverse")
            body.append_text(row)
            body.append("\n")
        self.update(body)
