"""Model quality over rounds: versions, per-technique F1, learning curve, confusion matrix,
stopping criterion, how often experts accept the suggestion, label counts against targets."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Footer, Static
from textual_plotext import PlotextPlot

from tui.safe import literal, shown
from tui.screens.base import Techne, TechneScreen


class StatsScreen(TechneScreen):
    """Read-only; escape or c goes back to labelling."""

    BINDINGS = [
        ("q,escape,c", "app.pop_screen", "Back to labelling"),
        ("f1", "app.help", "Help"),
        ("i", "insights", "Insights"),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="stats"):
            with Horizontal(id="stats-top", classes="stats-row"):
                yield Static(id="versions")
                yield PlotextPlot(id="curve")
            with Horizontal(id="stats-bottom", classes="stats-row"):
                yield Static(id="per-technique")
                yield Static(id="confusion")
        yield Footer()

    def on_mount(self) -> None:
        self.show(self.techne)

    def action_insights(self) -> None:
        from tui.screens.insights import InsightsScreen

        self.app.push_screen(InsightsScreen())

    def _curve(self, versions: list[Any]) -> None:
        """The workspace's own learning curve: held-out macro-F1 of each version against the
        gold labels it was trained on, whole numbers on the x axis."""
        plot = self.query_one("#curve", PlotextPlot).plt
        plot.clear_figure()
        points = sorted(
            (v.metrics["train_size"], v.metrics["macro_f1"])
            for v in versions
            if isinstance(v.metrics.get("train_size"), int)
            and isinstance(v.metrics.get("macro_f1"), float)
        )
        plot.title("Held-out macro-F1 by labels (one point per model version)")
        plot.xlabel("gold labels trained on")
        plot.ylim(0.0, 1.0)
        if points:
            xs, ys = [x for x, _ in points], [y for _, y in points]
            plot.plot(xs, ys, marker="braille", label="macro-F1")
            plot.scatter(xs, ys, marker="●")
            ticks = xs if len(xs) <= 6 else xs[:: max(1, len(xs) // 5)]
            plot.xticks(ticks, [str(x) for x in ticks])
            if len(xs) == 1:
                plot.xlim(xs[0] - 1, xs[0] + 1)

    def show(self, app: Techne) -> None:
        versions = app.repo.artifacts.versions()
        rounds = {r.model_version_id: r for r in app.repo.artifacts.rounds()}
        table = Table(title="Model versions", title_justify="left")
        for name in ("", "tag", "labels", "macro-F1", "ECE", "kappa vs prev"):
            table.add_column(name, no_wrap=True)
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
        self._curve(versions)

        status = app.repo.status()
        active = next((v for v in versions if v.active), None)
        per = Table(title="Per technique (active model, held out)", title_justify="left")
        for name in ("technique", "F1", "labels", "target"):
            per.add_column(name, no_wrap=name != "technique")
        scores = active.metrics.get("per_technique", {}) if active else {}
        for t in app.codebook.techniques:
            count = status["labelled_per_technique"].get(t.key, 0)
            target = f"{count}/{t.target}" if t.target else "-"
            per.add_row(literal(t.name), _num(scores.get(t.key, {}).get("f1")), str(count), target)
        self.query_one("#per-technique", Static).update(per)

        confusion = Text("Confusion matrix\n", style="bold", no_wrap=True)
        confusion.append("rows: gold, columns: predicted (technique letters)\n", style="italic")
        matrix = active.metrics.get("confusion") if active else None
        if matrix:
            keys = [shown(t.hotkey or t.key[:1])[:3] for t in app.codebook.techniques]
            confusion.append("    " + "".join(f"{k:>4}" for k in keys) + "\n", style="bold")
            for key, row in zip(keys, matrix, strict=False):
                confusion.append(f"{key:>3} ", style="bold")
                confusion.append("".join(f"{v:>4}" for v in row) + "\n")
        else:
            confusion.append("no model yet: press r on the annotate screen to train one")
        self.query_one("#confusion", Static).update(confusion)


def _num(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) and value == value else "-"
