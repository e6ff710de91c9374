"""Insights: technique profiles per conversation, MI indices, and what differs with the outcome
(forest plot with bootstrap intervals). Read-only; computed in a worker."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.console import Group
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import DataTable, Footer, Static
from textual_plotext import PlotextPlot

from tui.insights_view import (
    configured,
    describe,
    draw_forest,
    footnotes,
    outcome_table,
    profile_columns,
    profile_rows,
    summary_table,
)
from tui.safe import literal
from tui.screens.base import TechneScreen

SOURCES = ("gold", "model", "both")


class InsightsScreen(TechneScreen):
    """s cycles the label source, o the outcome field, g swaps the two groups."""

    BINDINGS = [
        ("q,escape,i", "app.pop_screen", "Back"),
        ("f1", "app.help", "Help"),
        ("s", "cycle_source", "Source"),
        ("o", "cycle_outcome", "Outcome"),
        ("g", "swap_groups", "Swap groups"),
    ]

    source: reactive[str] = reactive("gold")
    """Where labels come from: gold, model, or both (gold first)."""
    outcome: reactive[str | None] = reactive(None)
    """Conversation metadata field the techniques are related to (None: the default)."""
    swapped: reactive[bool] = reactive(False)
    """Compare the two outcome groups the other way round."""

    @dataclass
    class Computed(Message):
        """A report is ready, with the outcome fields the conversations offer."""

        report: dict[str, Any]
        fields: list[str]

    @dataclass
    class Refused(Message):
        """The analysis cannot run as asked (e.g. no model for --source model)."""

        error: str

    def __init__(self) -> None:
        super().__init__()
        self.report: dict[str, Any] | None = None
        self.fields: list[str] = []

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="insights"):
            yield Static(id="insights-header")
            with Horizontal(id="insights-top"):
                with VerticalScroll(id="insights-tables"):
                    yield Static(id="insights-table")
                yield PlotextPlot(id="insights-forest")
            yield DataTable(id="insights-profiles", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#insights-header", Static).update(Text("Computing insights…"))
        self._refresh()

    def _refresh(self) -> None:
        section = self.techne.workspace.section("insights")
        try:
            field, groups = configured(section, self.outcome, None)
        except ValueError as exc:
            self.notify(
                f"[insights] groups in techne.toml: {exc}", severity="warning", markup=False
            )
            field, groups = self.outcome, None
        self._compute_insights(self.source, field, groups, self.swapped)

    @work(
        thread=True, exclusive=True, exit_on_error=False, group="insights", description="insights"
    )
    def _compute_insights(
        self, source: str, field: str | None, groups: tuple[str, str] | None, swapped: bool
    ) -> None:
        from learning.insights import InsightsError, analyse, collect, outcome_fields, read_outcome

        try:
            corpus = collect(self.techne.repo, source)
            fields = outcome_fields(corpus.meta)
            if not field or (field not in fields and not groups):
                field, groups = (fields[0] if fields else None), None
            if field:
                groups = read_outcome(corpus.meta, field, groups).groups
            if groups and swapped:
                groups = (groups[1], groups[0])
            report = analyse(corpus, field, groups)
        except InsightsError as exc:
            self.post_message(self.Refused(str(exc)))
            return
        self.post_message(self.Computed(report, fields))

    @on(Computed)
    def _show_report(self, message: Computed) -> None:
        report = self.report = message.report
        report["technique_names"] = {t.key: t.name for t in self.techne.codebook.techniques}
        self.fields = message.fields
        outcome = report["outcome"]
        self.outcome = outcome["field"] if outcome else None
        lines = describe(report)
        if not outcome:
            lines.append(
                "No binary or numeric conversation field to relate techniques to: import one "
                "with --conversation-field."
            )
        self.query_one("#insights-header", Static).update(literal("\n".join(lines), multiline=True))
        notes = Text("\n".join(footnotes(report)), style="dim")
        tables = [outcome_table(report, compact=True)] if outcome else []
        tables.append(summary_table(report, compact=True))
        self.query_one("#insights-table", Static).update(Group(*tables, notes))
        plot = self.query_one("#insights-forest", PlotextPlot)
        draw_forest(plot.plt, report, label_width=14)
        plot.refresh()
        table = self.query_one("#insights-profiles", DataTable)
        table.clear(columns=True)
        rows = profile_rows(report)
        # widths given, not measured: DataTable measures added rows only when it next goes
        # idle, and until then draws every column at its header's width
        for i, name in enumerate(literal(n) for n in profile_columns(report)):
            table.add_column(name, width=max([name.cell_len, *(row[i].cell_len for row in rows)]))
        table.add_rows(rows)

    @on(Refused)
    def _show_refusal(self, message: Refused) -> None:
        self.notify(message.error, severity="warning", markup=False)
        if self.report is None:
            self.query_one("#insights-header", Static).update(literal(message.error))
        if self.source != "gold":
            self.source = "gold"
            self._refresh()

    def action_cycle_source(self) -> None:
        self.source = SOURCES[(SOURCES.index(self.source) + 1) % len(SOURCES)]
        self._refresh()

    def action_cycle_outcome(self) -> None:
        if not self.fields:
            self.notify("No binary or numeric conversation field to use as the outcome.")
            return
        now = self.fields.index(self.outcome) if self.outcome in self.fields else -1
        self.outcome = self.fields[(now + 1) % len(self.fields)]
        self.swapped = False
        self._refresh()

    def action_swap_groups(self) -> None:
        self.swapped = not self.swapped
        self._refresh()
