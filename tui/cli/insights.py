"""The `insights` command: technique profiles, MI indices and what differs with the outcome."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.text import Text

from tui.cli.common import Json, open_repo, out
from tui.insights_view import (
    configured,
    describe,
    footnotes,
    forest_text,
    outcome_table,
    profile_table,
    summary_table,
)


def insights_cmd(
    ctx: typer.Context,
    outcome: Annotated[
        str | None,
        typer.Option(
            help="Conversation metadata field to relate techniques to: binary (two values) or "
            "numeric (default: [insights] outcome in techne.toml)."
        ),
    ] = None,
    groups: Annotated[
        str | None,
        typer.Option(
            help="The two outcome values to compare, reference first: low,high "
            "(default: [insights] groups, else sorted)."
        ),
    ] = None,
    source: Annotated[
        str,
        typer.Option(help="gold | model | both (gold, and the active model for the rest)."),
    ] = "gold",
    gold: Annotated[
        str, typer.Option(help="Weakest gold source accepted: adjudicated | majority | single.")
    ] = "single",
    resamples: Annotated[int, typer.Option(help="Bootstrap resamples.")] = 2000,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap.")] = 0,
    level: Annotated[float, typer.Option(help="Confidence level of the intervals.")] = 0.95,
    profiles: Annotated[
        bool, typer.Option("--profiles", help="Also print every conversation's profile.")
    ] = False,
    plot: Annotated[bool, typer.Option("--plot/--no-plot", help="Draw the forest plot.")] = True,
    as_json: Json = False,
) -> None:
    """Technique profiles per conversation, MI summary indices (R:Q, %CR, %OQ where the
    codebook has the codes) and, with --outcome, the difference per technique between the
    two outcome groups (or its correlation with a numeric outcome), with percentile
    bootstrap intervals over conversations.

    Example (AnnoMI, imported with --conversation-field mi_quality):

        techne insights --outcome mi_quality --groups low,high

        techne insights --outcome mi_quality --source both --json
    """
    from learning.insights import insights

    with open_repo(ctx) as (ws, repo):
        try:
            field, pair = configured(ws.section("insights"), outcome, groups)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--groups") from None
        report = insights(
            repo,
            source,
            field,
            pair,
            gold_level=gold,
            resamples=resamples,
            seed=seed,
            level=level,
        )
    if as_json:
        out.print_json(json.dumps(report))
        return
    print_report(report, profiles)
    if plot and report["outcome"]:
        out.print(Text.from_ansi(forest_text(report)))


def print_report(report: dict[str, Any], profiles: bool = False) -> None:
    """The report as text and tables (values from data are never read as markup)."""
    for line in describe(report):
        out.print(line, markup=False)
    out.print(summary_table(report))
    if report["outcome"]:
        out.print(outcome_table(report))
    for line in footnotes(report):
        out.print(line, markup=False)
    if profiles:
        out.print(profile_table(report))
