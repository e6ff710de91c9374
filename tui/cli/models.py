"""Model commands: retrain, models (list, show, activate), predict. torch loads only when
they run."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from tui.cli.common import (
    Conversation,
    Device,
    Id,
    InputFormat,
    Json,
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
from tui.safe import literal, shown


def _settings(ws: Any, **overrides: Any) -> Any:
    from learning.settings import LearningSettings

    return LearningSettings.from_workspace(ws, **overrides)


def retrain_cmd(
    ctx: typer.Context,
    backend: Annotated[
        str | None, typer.Option(help="embed | finetune (default: techne.toml).")
    ] = None,
    strategy: Annotated[str | None, typer.Option(help="Query strategy for the next batch.")] = None,
    batch: Annotated[int | None, typer.Option(help="Messages to queue for labelling.")] = None,
    device: Device = None,
    as_json: Json = False,
) -> None:
    """Run a retrain round: train on the gold labels, measure on held-out conversations,
    register a new active model version, refresh suggestions and queue the next batch.

    Strategies: auto (default: random to 100 labels, then a draw weighted towards the
    uncertain), cluster-margin, badge, typiclust, breaking-ties, least-confidence,
    prediction-entropy, random, embedding-kmeans, class-balanced, contrastive (an unknown
    name lists the known ones before anything runs). A failed round changes nothing. With
    no model and too few labels to train, the codebook's examples give a zero-shot model,
    v0. With no new label since the active model, nothing is registered (exit 0, "Nothing
    to retrain").

    Examples:

        techne retrain

        techne retrain --backend finetune --device cuda --strategy class-balanced --batch 50
    """
    from learning.choices import check_strategy
    from learning.rounds import NoNewLabels, run_round
    from learning.tuned import encoder_refresh_due

    if strategy is not None:
        check_strategy(strategy, "--strategy")
    try:
        with open_repo(ctx) as (ws, repo):
            settings = _settings(
                ws, backend=backend, strategy=strategy, batch_size=batch, device=device
            )
            check_strategy(settings.strategy, f"{ws.config_path}: [learning] strategy")
            with ProgressBar(err, "retraining", enabled=not as_json) as progress:
                result = run_round(repo, ws.models_dir, settings, progress)
            due = encoder_refresh_due(
                ws.models_dir, settings, result.metrics.get("train_size"), repo.codebook()
            )
    except NoNewLabels as exc:
        if as_json:
            out.print_json(json.dumps({"round": None, "model": exc.active, "skipped": str(exc)}))
        else:
            out.print(f"Nothing to retrain: {exc}.", markup=False)
        return
    report = {
        "round": result.round.number,
        "model": result.model.tag,
        "backend": result.model.backend,
        "queued": len(result.queried),
        "metrics": result.metrics,
        "timings_s": result.timings,
        "encoder_refresh_due": due,
    }
    if as_json:
        out.print_json(json.dumps(report))
        return
    m = result.metrics
    f1 = f"{m['macro_f1']:.3f}" if m.get("n") else "n/a (no held-out labels yet)"
    ece = f"{m['ece']:.3f}" if m.get("n") and "ece" in m else "n/a"
    out.print(
        shown(
            f"Round {result.round.number}: model {result.model.tag} ({result.model.backend}) "
            "is active. "
            f"Held-out macro-F1 {f1} on {m['eval_size']} messages, ECE {ece}; "
            f"trained on {m['train_size']} labels"
            + (f" and {m['pseudo_labels']} pseudo-labels" if m.get("pseudo_labels") else "")
            + f"; {len(result.queried)} messages queued."
        ),
        markup=False,
    )
    if m.get("stop_suggested"):
        out.print(
            "Predictions have stopped changing (kappa average >= 0.99): more labels may add little."
        )
    if due:
        out.print(
            f"An encoder refresh is due ({m['train_size']} labels): run `techne refresh-encoder` "
            "(minutes; rounds go on meanwhile). The app starts one by itself."
        )


def refresh_encoder_cmd(
    ctx: typer.Context,
    device: Device = None,
    as_json: Json = False,
    low_priority: Annotated[
        bool,
        typer.Option(
            "--low-priority", help="Run at low CPU priority (nice 10), as the app's own does."
        ),
    ] = False,
) -> None:
    """Fine-tune the encoder on the gold labels and encode the pool with it: the next
    rounds (`techne retrain`, `r` in the app) use its vectors beside the frozen encoder's.

    It uses the finetune backend's recipe, leaving out the held-out conversations. It takes
    minutes on a CPU, so run it beside annotating (`techne refresh-encoder &`): rounds never
    wait on it, and they switch to the new encoder only once the pool is encoded. On AnnoMI
    (dev) it added 0.02-0.03 macro-F1 from 800 labels on; below that it does not pay.

    Example:

        techne refresh-encoder
    """
    from learning.encoder_refresh import refresh_encoder

    if low_priority and hasattr(os, "nice"):
        os.nice(10)  # a labelling session's keypresses come first
    with open_repo(ctx) as (ws, repo):
        settings = _settings(ws, device=device)
        with ProgressBar(err, "refreshing the encoder", enabled=not as_json) as progress:
            made = refresh_encoder(repo, ws.models_dir, settings, progress)
    tuned, seconds = made.encoder, made.seconds
    report = {
        "encoder": tuned.name,
        "labels": tuned.labels,
        "seconds": seconds,
        "pruned_encoders": made.pruned,
    }
    if as_json:
        out.print_json(json.dumps(report))
        return
    pruned = f" Deleted {made.pruned} encoder folder(s) no model version uses." * bool(made.pruned)
    out.print(
        shown(
            f"Encoder {tuned.name}: fine-tuned on {tuned.labels} labels in "
            f"{seconds['finetune']:.0f} s, pool encoded in {seconds['encode_pool']:.0f} s. "
            f"The next retrain uses it.{pruned}"
        ),
        markup=False,
    )


def list_cmd(ctx: typer.Context, as_json: Json = False) -> None:
    """Every model version with its held-out macro-F1; the active one is marked.

    Example:

        techne models list --json
    """
    with open_repo(ctx) as (_, repo):
        versions = repo.artifacts.versions()
    if as_json:
        out.print_json(json.dumps([v.__dict__ for v in versions]))
        return
    table = Table(title="Model versions", title_justify="left")
    for name in ("", "tag", "created", "backend", "labels", "macro-F1", "ECE"):
        table.add_column(name)
    for v in versions:
        f1, ece = v.metrics.get("macro_f1"), v.metrics.get("ece")
        table.add_row(
            "*" if v.active else "",
            literal(v.tag),
            literal(v.created_at[:19]),
            literal(v.backend),
            str(v.metrics.get("train_size", "")),
            f"{f1:.3f}" if isinstance(f1, float) and f1 == f1 else "-",
            f"{ece:.3f}" if isinstance(ece, float) and ece == ece else "-",
        )
    out.print(table)


def show_cmd(
    ctx: typer.Context, ref: Annotated[str, typer.Argument(help="Version id or tag.")]
) -> None:
    """Settings, metrics and per-technique scores of one model version (JSON), and how
    its encoder runtime compared with torch fp32 on the held-out set (runtime_note).

    Example:

        techne models show v3
    """
    with open_repo(ctx) as (_, repo):
        version = repo.artifacts.version(ref)
    from learning.fidelity import note

    card = dict(version.__dict__)
    if (line := note(version)) is not None:
        card["runtime_note"] = line  # e.g. a runtime that is no longer used by default
    out.print_json(json.dumps(card))


def activate_cmd(
    ctx: typer.Context, ref: Annotated[str, typer.Argument(help="Version id or tag.")]
) -> None:
    """Make an earlier (or later) model version the active one: a rollback.

    Example:

        techne models activate v2
    """
    from learning.registry import activate_version

    with open_repo(ctx) as (ws, repo):
        version = activate_version(repo, ws.models_dir, ref)
    out.print(shown(f"Model {version.tag} is now active."), markup=False)


def predict_cmd(
    ctx: typer.Context,
    source: Annotated[Path, typer.Argument(help="CSV, JSONL or Parquet file to score.")],
    output: Annotated[Path, typer.Argument(help="Parquet file to write.")],
    model: Annotated[
        str | None, typer.Option(help="Model version (default: the active one).")
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Messages per model batch.")] = 256,
    device: Device = None,
    runtime: Annotated[
        str | None,
        typer.Option(
            help="Encoder runtime: auto | torch | onnx | onnx-int8 (default: techne.toml)."
        ),
    ] = None,
    text: Text = "text",
    speaker: Speaker = None,
    conversation: Conversation = None,
    order: Order = None,
    id: Id = None,  # noqa: A002
    labelable_speaker: LabelableSpeaker = None,
    fmt: InputFormat = None,
    as_json: Json = False,
) -> None:
    """Score every message of a file of any size with a model: probabilities per technique
    and the top label, streamed in chunks. An interrupted run resumes where it stopped.
    With --order, each conversation's turns are put in that column's order first (a
    conversation's rows must lie within 10,000 rows of each other).

    Example:

        techne predict all_messages.csv scores.parquet --text body --conversation thread
        --order turn --speaker role --labelable-speaker therapist
    """
    from learning.fidelity import predict_runtime
    from learning.predict import predict_file
    from learning.registry import load_predictor, model_folder

    with open_repo(ctx) as (ws, repo):
        version = repo.artifacts.version(model) if model else repo.artifacts.active()
    if version is None:
        from learning.registry import ModelError

        raise ModelError("no active model: run `techne retrain` first")
    settings = _settings(ws, device=device, runtime=runtime)
    predictor = load_predictor(
        model_folder(ws.models_dir, version), version.checksum, settings.device, "torch"
    )
    predictor.runtime = predict_runtime(
        settings.runtime, settings.device, predictor.card.runtime, version
    )
    columns = column_map(
        text=text,
        speaker=speaker,
        conversation=conversation,
        order=order,
        id=id,
        labelable_speaker=labelable_speaker,
    )
    with ProgressBar(err, f"predict {source.name}", unit="bytes", enabled=not as_json) as advance:
        report = predict_file(
            predictor,
            source,
            output,
            columns,
            model_tag=version.tag,
            model_checksum=version.checksum or "",
            fmt=fmt,
            batch_size=batch_size,
            progress=advance,
        )
    if as_json:
        out.print_json(json.dumps(report.as_dict()))
    else:
        out.print(
            f"Scored {report.rows:,} messages with {shown(version.tag)} into "
            f"{shown(report.output)}: "
            f"{report.messages_per_s:,.0f} messages/s scored, {report.encoded_per_s:,.0f}/s "
            f"encoded ({report.messages_encoded:,} texts with context, {shown(report.runtime)}); "
            f"{report.chunks_resumed} of {report.chunks} chunks resumed.",
            markup=False,
        )
