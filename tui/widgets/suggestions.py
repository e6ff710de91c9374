"""Every technique with the model's probability as a bar; one row is selected."""

from __future__ import annotations

from rich.text import Text
from textual.events import Resize
from textual.reactive import reactive
from textual.widgets import Static

from store import CodebookView
from store.queue import Suggestion
from tui.safe import shown

BAR = 20
"""Widest probability bar, in cells."""
NONE = -1
"""No technique selected (blind mode before the expert's choice)."""
TIE = 0.005
"""Probabilities closer than this are a tie as shown (two decimals)."""


def tied(suggestion: Suggestion | None) -> list[str]:
    """The techniques sharing the top probability as shown, when two or more do."""
    if suggestion is None or not suggestion.probabilities:
        return []
    ranked = sorted(suggestion.probabilities.items(), key=lambda kv: -float(kv[1]))
    top = float(ranked[0][1])
    ties = [k for k, p in ranked if top - float(p) < TIE]
    return ties if len(ties) > 1 else []


class SuggestionList(Static):
    """Rows: digit, hotkey, name, probability bar. The selection is what `enter` saves.

    Each technique stays on one line: the bar narrows (and goes) before a row would wrap."""

    selected: reactive[int] = reactive(0)
    """Index of the highlighted technique, or NONE."""
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

    def on_resize(self, _: Resize) -> None:
        self.refresh_rows()

    def header(self) -> Text:
        """What the rows come from: the model, blind mode, or nothing yet."""
        s = self.suggestion
        if s is None:
            return Text("no suggestion yet (retrain with r)", style="italic")
        if not self.revealed:
            return Text("blind: the model's suggestion is hidden until you choose", style="italic")
        line = Text(f"suggested by {shown(s.model_tag)}", style="italic")
        if s.stale:
            line.append("  STALE: a newer model is active", style="bold")
        ties = tied(s)
        if ties:
            names = {t.key: t.name for t in self.codebook.techniques}
            line.append("  TIE (=): ", style="bold")
            line.append(" / ".join(shown(names.get(k, k)) for k in ties))
        return line

    def refresh_rows(self) -> None:
        s = self.suggestion if self.revealed else None
        techniques = self.codebook.techniques
        name_width = min(max((len(t.name) for t in techniques), default=8), 26)
        counted = any(t.target for t in techniques)
        width = self.content_region.width or 80
        fixed = 4 + 4 + name_width + 1 + (6 if s is not None else 0) + (11 if counted else 0)
        bar = max(0, min(BAR, width - fixed))
        bar = bar if bar >= 5 else 0
        ties = set(tied(s))
        body = Text(no_wrap=True, overflow="ellipsis")
        body.append_text(self.header())
        body.append("\n")
        for i, t in enumerate(techniques):
            mark = "▶" if i == self.selected else " "
            if self.codebook.multi_label:
                mark += "☑" if t.key in self.toggled else "☐"
            digit = str(i + 1) if i < 9 else " "
            name = shown(t.name)
            name = name if len(name) <= name_width else name[: name_width - 1] + "…"
            row = Text(f"{mark} {digit} [{shown(t.hotkey or ' ')}] {name:<{name_width}} ")
            if s is not None:
                p = float(s.probabilities.get(t.key, 0.0))
                filled = round(p * bar)
                row.append("█" * filled + "·" * (bar - filled))
                row.append(f" {p:4.2f}" + ("=" if t.key in ties else " "))
            if t.target:
                row.append(f" {self.counts.get(t.key, 0):>4}/{t.target}")
            if i == self.selected:
                row.stylize("reverse")
            body.append_text(row)
            body.append("\n")
        body.rstrip()
        self.update(body)
