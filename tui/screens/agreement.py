"""Agreement at a glance: Cohen's kappa per coder pair, Krippendorff's alpha overall and per
technique, and each expert against the model's suggestion, with item counts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Static

if TYPE_CHECKING:
    from tui.app import TechneApp


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def agreement_view(report: dict[str, Any]) -> Group:
    """The report as Rich tables (coder names as literal text)."""
    head = Text(
        f"{report['items_coded']:,} messages coded; {report['items_multiply_coded']:,} coded by "
        f"two or more. Krippendorff's alpha (nominal): {_num(report['alpha'])}"
    )
    techniques = Table(title="Alpha per technique", title_justify="left")
    for name in ("technique", "alpha", "codes on shared items"):
        techniques.add_column(name)
    for key, row in report["alpha_per_technique"].items():
        techniques.add_row(key, _num(row["alpha"]), f"{row['coded']:,}")
    pairs = Table(title="Cohen's kappa per pair", title_justify="left")
    for name in ("coder", "coder", "items", "kappa", "agree"):
        pairs.add_column(name)
    for p in report["pairs"]:
        pairs.add_row(
            Text(p["a"]),
            Text(p["b"]),
            f"{p['items']:,}",
            _num(p["kappa"]),
            f"{p['percent_agreement']:.0%}",
        )
    versus = Table(title="Expert vs model suggestion", title_justify="left")
    for name in ("expert", "items", "kappa", "agree"):
        versus.add_column(name)
    for row in report.get("expert_vs_model", []):
        versus.add_row(
            Text(row["annotator"]),
            f"{row['items']:,}",
            _num(row["kappa"]),
            f"{row['percent_agreement']:.0%}",
        )
    if not report.get("expert_vs_model"):
        note = Text("Expert vs model: no expert has labelled with a suggestion on screen yet.")
        return Group(head, techniques, pairs, note)
    return Group(head, techniques, pairs, versus)


class AgreementScreen(Screen[None]):
    """Read-only; computed in a worker. escape or G goes back."""

    BINDINGS = [("escape,G", "app.pop_screen", "Back")]

    @dataclass
    class Computed(Message):
        report: dict[str, Any]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="agreement-body"):
            yield Static(Text("Computing agreement…"), id="agreement")
        yield Footer()

    def on_mount(self) -> None:
        self._compute_agreement()

    @property
    def techne(self) -> TechneApp:
        from tui.app import TechneApp

        assert isinstance(self.app, TechneApp)
        return self.app

    @work(thread=True, exclusive=True, exit_on_error=False, description="agreement")
    def _compute_agreement(self) -> None:
        self.post_message(self.Computed(self.techne.repo.agreement()))

    @on(Computed)
    def _agreement_computed(self, message: Computed) -> None:
        self.query_one("#agreement", Static).update(agreement_view(message.report))
