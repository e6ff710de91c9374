"""`techne simulate`: learning curves per learner and strategy, to choose one. torch and
scikit-learn load only when it runs."""

from __future__ import annotations

import json
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from store import TechneError
from tui.cli.common import (
    Conversation,
    Id,
    InputFormat,
    Label,
    LabelableSpeaker,
    Order,
    Speaker,
    Text,
    column_map,
    err,
    open_repo,
    out,
)
from tui.progress import ProgressBar

ALL = "all"


def simulate_cmd(
    ctx: typer.Context,
    source: Annotated[
        Path | None,
        typer.Argument(
            help="A labelled CSV, JSONL or Parquet file (default: the workspace's own labels)."
        ),
    ] = None,
    strategies: Annotated[str, typer.Option(help="Comma-separated strategies, or all.")] = ALL,
    learners: Annotated[str, typer.Option(help="Comma-separated round learners, or all.")] = ALL,
    budgets: Annotated[
        str, typer.Option(help="Comma-separated label budgets.")
    ] = "50,100,200,400,800,1600",
    seeds: Annotated[str, typer.Option(help="Comma-separated seeds.")] = "0,1,2,3,4",
    step: Annotated[int, typer.Option(help="Labels added per simulated round.")] = 50,
    target: Annotated[
        float | None, typer.Option(help="Also report the labels needed to reach this macro-F1.")
    ] = None,
    codebook: Annotated[
        str | None, typer.Option(help="Codebook (default: the workspace's).")
    ] = None,
    context: Annotated[
        str | None,
        typer.Option(help="none | previous | around (default: techne.toml, then around)."),
    ] = None,
    text: Text = "text",
    speaker: Speaker = None,
    conversation: Conversation = None,
    order: Order = None,
    id: Id = None,  # noqa: A002
    label: Label = None,
    labelable_speaker: LabelableSpeaker = None,
    fmt: InputFormat = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the results as JSON here.")
    ] = None,
) -> None:
    """Simulate active learning with known labels as the oracle, to choose a strategy and a
    learner: learning curves (mean ± sd over seeds) on a conversation-grouped 80/20 split,
    area under the curve, and per strategy the labels it needs to reach random sampling's
    score at the largest budget, with the saving against random (random always runs).

    The labels come from SOURCE (--label names its column) or, without SOURCE, from the
    workspace's gold labels. A workspace (-w, or the current folder) lends its cached
    vectors: messages whose text it has already encoded are not encoded again.

    Examples:

        techne simulate AnnoMI-simple.csv --text utterance_text --speaker interlocutor
        --conversation transcript_id --order utterance_id --label main_therapist_behaviour
        --labelable-speaker therapist --codebook annomi

        techne -w my-study simulate --strategies breaking-ties,class-balanced --target 0.6
    """
    from learning.choices import check_strategies, known_strategies
    from learning.simulate import LEARNERS, simulate

    chosen = check_strategies(
        known_strategies() if strategies.strip() == ALL else strategies.split(","), "--strategies"
    )
    learner_names = list(LEARNERS) if learners.strip() == ALL else _names(learners)
    for name in learner_names:
        if name not in LEARNERS:
            raise typer.BadParameter(
                f"unknown learner {name!r}; known learners: {', '.join(LEARNERS)}",
                param_hint="--learners",
            )
    budget_list, seed_list = _ints(budgets, "--budgets"), _ints(seeds, "--seeds")
    if not budget_list or min(budget_list) < 1 or not seed_list:
        raise typer.BadParameter("give at least one budget (>= 1) and one seed")
    if step < 1:
        raise typer.BadParameter("--step must be at least 1")
    if source is not None and not label:
        raise typer.BadParameter("--label is required: the labels are the simulation's oracle")
    data = _load_data(
        ctx,
        source,
        codebook,
        context,
        fmt,
        dict(
            text=text,
            speaker=speaker,
            conversation=conversation,
            order=order,
            id=id,
            label=label,
            annotator="oracle",
            labelable_speaker=labelable_speaker,
        ),
    )
    with ProgressBar(err, "simulating") as progress:
        result = simulate(
            data,
            chosen,
            budget_list,
            seed_list,
            target=target,
            step=step,
            progress=progress,
            learners=learner_names,
        )
    if json_out:
        json_out.write_text(json.dumps(result, indent=2))
    _print_result(result)


def _print_result(result: dict[str, Any]) -> None:
    """Plot and table: colour and terminal width on a terminal; elsewhere no colour codes
    and tables at their full width (never cut to 80 columns)."""
    from learning.simulate import plot

    terminal = out.is_terminal
    console = (
        out if terminal else Console(file=out.file, width=10_000, no_color=True, highlight=False)
    )
    out.print(plot(result, colour=terminal), markup=False, highlight=False)
    target = result.get("target")
    largest = result["budgets"][-1]
    references = sorted({row["random_at_largest"] for row in result["strategies"].values()})
    reference = f"{references[0]:.3f}" if len(references) == 1 else "score (with the same learner)"
    out.print(
        f"macro-F1 by labels (mean ± sd over {len(result['seeds'])} seeds). Labels to random: "
        f"the labels a strategy needs to reach random's {reference} at {largest} labels; "
        f"saving: the share of those {largest} labels it saves.",
        markup=False,
    )
    table = Table()
    table.add_column("strategy")
    for b in result["budgets"]:
        table.add_column(str(b), justify="right")
    table.add_column("AUC", justify="right")
    table.add_column("labels to random", justify="right")
    table.add_column("saving", justify="right")
    if target is not None:
        table.add_column(f"labels to {target:.2f}", justify="right")
    for name, row in result["strategies"].items():
        reach = row["labels_to_random"]
        cells = [
            name,
            *(f"{m:.3f}±{s:.3f}" for m, s in zip(row["mean"], row["sd"], strict=True)),
            f"{row['auc']:.3f}",
            f"{reach:.0f}" if reach is not None else "not reached",
            f"{row['saving_vs_random']:+.0%}" if reach is not None else "-",
        ]
        if target is not None:
            hit = row.get("labels_to_target")
            cells.append(f"{hit:.0f}" if hit is not None else "not reached")
        table.add_row(*cells)
    console.print(table)
    per_learner = result["all_labels"].get("per_learner")
    if per_learner:
        scores = ", ".join(f"{k} {v['mean']:.3f}" for k, v in per_learner.items())
        out.print(f"All labels: macro-F1 {scores}", markup=False)
    else:
        out.print(f"All labels: macro-F1 {result['all_labels']['mean']:.3f}", markup=False)


def _names(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def _ints(text: str, option: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise typer.BadParameter(
            f"expected comma-separated integers, got {text!r}", param_hint=option
        ) from None


def _load_data(
    ctx: typer.Context,
    source: Path | None,
    codebook: str | None,
    context: str | None,
    fmt: str | None,
    columns: dict[str, Any],
) -> Any:
    """The simulation's features and labels, from SOURCE (imported into a throwaway store)
    or the workspace's own gold labels; the workspace's cached vectors are reused."""
    from learning.simulation_data import reuse_vectors, scratch_store
    from store.codebooks import find_codebook, spec_from_view
    from store.io import import_file

    settings = None
    spec = find_codebook(codebook) if codebook else None
    with ExitStack() as stack:
        try:
            ws, ws_repo = stack.enter_context(open_repo(ctx))
        except TechneError:
            if source is None or spec is None:  # no workspace, and not enough to do without one
                raise
            ws_repo = None
        if ws_repo is not None:
            settings = _settings(ws, context)
            spec = spec or spec_from_view(ws_repo.codebook())
        if source is None:
            assert ws_repo is not None
            return _encoded(ws_repo, settings, context)
        assert spec is not None
        repo = stack.enter_context(scratch_store(spec))
        import_file(repo, source, column_map(**columns), fmt=fmt, max_text_chars=10**7)
        if ws_repo is not None:
            reuse_vectors(ws_repo, repo, settings)
        return _encoded(repo, settings, context)


def _encoded(repo: Any, settings: Any, context: str | None) -> Any:
    from learning.simulation_data import simulation_data

    with ProgressBar(err, "encoding messages") as progress:
        return simulation_data(repo, settings, context, progress)


def _settings(ws: Any, context: str | None) -> Any:
    from learning.settings import LearningSettings

    return LearningSettings.from_workspace(ws, context_mode=context)
