"""Model quality over rounds: versions, per-technique F1, learning curve, confusion matrix,
stopping criterion, how often experts accept the suggestion, label counts against targets."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static
from textual_plotext import PlotextPlot

from tui.safe import literal, shown

if TYPE_CHECKING:
    from tui.app import TechneApp


class StatsScreen(Screen[None]):
    """Read-only; escape or c goes back to labelling."""

    BINDINGS = [
        ("escape,c", "app.pop_screen", "Back to labelling"),
        ("i", "insights", "Insights"),
    ]

    def compose(self) -> ComposeResult:
        with Horizontal(id="stats-top"):
            yield Static(id="versions")
            yield PlotextPlot(id="curve")
        with Horizontal(id="stats-bottom"):
            with VerticalScroll():
                yield Static(id="per-technique")
            with VerticalScroll():
                yield Static(id="confusion")
        yield Footer()

    def on_mount(self) -> None:
        from tui.app import TechneApp

        app = self.app
        assert isinstance(app, TechneApp)
        self.show(app)

    def action_insights(self) -> None:
        from tui.screens.insights import InsightsScreen

        self.app.push_screen(InsightsScreen())

    def show(self, app: TechneApp) -> None:
        versions = app.repo.artifacts.versions()
        rounds = {r.model_version_id: r for r in app.repo.artifacts.rounds()}
        table = Table(title="Model versions", title_justify="left", expand=True)
        for name in ("", "tag", "labels", "macro-F1", "ECE", "kappa"):
            table.add_column(name)
        for v in versions:
            f1, ece = v.metrics.get("macro_f1"), v.metrics.get("ece")
            kappa = rounds[v.id].stats.get("kappa_vs_previous") if v.id in rounds else None
            table.add_row(
                "*" if v.active else "",
                literal(v.tag),
                str(v.metrics.get("train_size", "")),
                _num(f1),
                _num(ece),
                _num(kappa),
            )
        acceptance = app.repo.suggestion_acceptance()
        rate = acceptance["accepted"] / acceptance["shown"] if acceptance["shown"] else None
        caption = (
            f"Suggestions accepted as shown: {acceptance['accepted']} of {acceptance['shown']}"
            + (f" ({rate:.0%})" if rate is not None else "")
        )
        table.caption = caption
        self.query_one("#versions", Static).update(table)

        plot = self.query_one("#curve", PlotextPlot).plt
        plot.clear_figure()
        points = [(v.metrics.get("train_size"), v.metrics.get("macro_f1")) for v in versions]
        points = [(x, y) for x, y in points if isinstance(x, int) and isinstance(y, float)]
        if points:
            plot.plot([x for x, _ in points], [y for _, y in points], marker="dot")
        plot.title("held-out macro-F1 by labels")
        plot.xlabel("labels")
        kappas = [r.stats.get("kappa_vs_previous") for r in app.repo.artifacts.rounds()]
        if any(k is not None for k in kappas):
            plot.plot(
                [x for x, _ in points][-len(kappas) :],
                [k if k is not None else 0.0 for k in kappas][-len(points) :],
                label="kappa vs previous model",
            )

        status = app.repo.status()
        active = next((v for v in versions if v.active), None)
        per = Table(
            title="Per technique (active model, held out)", title_justify="left", expand=True
        )
        for name in ("technique", "F1", "labels", "target"):
            per.add_column(name)
        scores = active.metrics.get("per_technique", {}) if active else {}
        for t in app.codebook.techniques:
            count = status["labelled_per_technique"].get(t.key, 0)
            target = f"{count}/{t.target}" if t.target else "-"
            per.add_row(literal(t.name), _num(scores.get(t.key, {}).get("f1")), str(count), target)
        self.query_one("#per-technique", Static).update(per)

        confusion = Text("Confusion matrix (rows: gold, columns: predicted)\n", style="bold")
        matrix = active.metrics.get("confusion") if active else None
        if matrix:
            keys = [shown(t.hotkey or t.key[:1]) for t in app.codebook.techniques]
            confusion.append("    " + "".join(f"{k:>4}" for k in keys) + "\n", style="bold")
            for key, row in zip(keys, matrix, strict=False):
                confusion.append(f"{key:>3} " + "".join(f"{v:>4}" for v in row) + "\n")
        else:
            confusion.append("no model yet: press r on the annotate screen to train one")
        self.query_one("#confusion", Static).update(confusion)


def _num(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) and value == value else "-"
