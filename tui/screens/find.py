"""Search results: pick a message to jump to."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

from store import MessageView
from tui.safe import literal


class FindScreen(ModalScreen[int | None]):
    """Lists matching messages; enter returns the chosen message id."""

    BINDINGS = [("escape", "cancel", "Cancel")]

    def __init__(self, needle: str, matches: list[MessageView]) -> None:
        super().__init__()
        self.needle = needle
        self.matches = matches

    def compose(self) -> ComposeResult:
        with Vertical(id="find"):
            yield Label(
                literal(f"{len(self.matches)} messages containing {self.needle!r}"), markup=False
            )
            yield OptionList(
                *(
                    Option(
                        literal(f"{m.conversation_external_id}#{m.position}  ")
                        + literal(m.text[:100]),
                        id=str(m.id),
                    )
                    for m in self.matches
                ),
                id="find-results",
            )

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(int(event.option.id or 0) or None)

    def action_cancel(self) -> None:
        self.dismiss(None)
