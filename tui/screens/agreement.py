"""Agreement at a glance: Cohen's kappa per coder pair, Krippendorff's alpha overall and per
technique, and each expert against the model's suggestion, with item counts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Footer, Static

from tui.agreement_view import agreement_view
from tui.screens.base import TechneScreen


class AgreementScreen(TechneScreen):
    """Read-only; computed in a worker. escape or G goes back."""

    BINDINGS = [("q,escape,G", "app.pop_screen", "Back"), ("f1", "app.help", "Help")]

    @dataclass
    class Computed(Message):
        report: dict[str, Any]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="agreement-body"):
            yield Static(Text("Computing agreement…"), id="agreement")
        yield Footer()

    def on_mount(self) -> None:
        self._compute_agreement()

    @work(thread=True, exclusive=True, exit_on_error=False, description="agreement")
    def _compute_agreement(self) -> None:
        self.post_message(self.Computed(self.techne.repo.agreement()))

    @on(Computed)
    def _agreement_computed(self, message: Computed) -> None:
        names = {t.key: t.name for t in self.techne.codebook.techniques}
        self.query_one("#agreement", Static).update(agreement_view(message.report, names))
