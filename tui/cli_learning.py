"""Learning commands: retrain, models, predict, simulate. torch loads only when they run."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from store.errors import TechneError

if TYPE_CHECKING:
    from store.repository import Repository
from tui import options as opt
from tui.cli import _opts, app, column_map, err, out
from tui.progress import ProgressBar

models_app = typer.Typer(help="Inspect model versions and roll back.", no_args_is_help=True)
app.add_typer(models_app, name="models")


def _settings(ws: Any, **overrides: Any) -> Any:
    from learning.settings import LearningSettings

    return LearningSettings.from_workspace(ws, **overrides)


@app.command("retrain")
def retrain_cmd(
    ctx: typer.Context,
    backend: Annotated[
        str | None, typer.Option(help="embed | finetune (default: techne.toml).")
    ] = None,
    strategy: Annotated[str | None, typer.Option(help="Query strategy for the next batch.")] = None,
    batch: Annotated[int | None, typer.Option(help="Messages to queue for labelling.")] = None,
    device: opt.Device = None,
    as_json: opt.Json = False,
) -> None:
    """Run a retrain round: train on the gold labels, measure on held-out conversations,
    register a new active model version, refresh suggestions and queue the next batch.

    Strategies: breaking-ties (default), least-confidence, prediction-entropy, random,
    embedding-kmeans, class-balanced, contrastive. A failed round changes nothing.

    Examples:

        techne retrain

        techne retrain --backend finetune --device cuda --strategy class-balanced --batch 50
    """
    from learning.rounds import run_round

    ws, repo = _opts(ctx).open()
    try:
        settings = _settings(
            ws, backend=backend, strategy=strategy, batch_size=batch, device=device
        )
        with ProgressBar(err, "retraining", enabled=not as_json) as progress:
            result = run_round(repo, ws.models_dir, settings, progress)
    finally:
        repo.close()
    report = {
        "round": result.round.number,
        "model": result.model.tag,
        "backend": result.model.backend,
        "queued": len(result.queried),
        "metrics": result.metrics,
        "timings_s": result.timings,
    }
    if as_json:
        out.print_json(json.dumps(report))
        return
    m = result.metrics
    f1 = f"{m['macro_f1']:.3f}" if m.get("n") else "n/a (no held-out labels yet)"
    ece = f"{m['ece']:.3f}" if m.get("n") and "ece" in m else "n/a"
    out.print(
        f"Round {result.round.number}: model {result.model.tag} ({result.model.backend}) "
        "is active. "
        f"Held-out macro-F1 {f1} on {m['eval_size']} messages, ECE {ece}; "
        f"trained on {m['train_size']} labels; {len(result.queried)} messages queued.",
        markup=False,
    )
    if m.get("stop_suggested"):
        out.print(
            "Predictions have stopped changing (kappa average >= 0.99): more labels may add little."
        )


@models_app.command("list")
def models_list(ctx: typer.Context, as_json: opt.Json = False) -> None:
    """Every model version with its held-out macro-F1; the active one is marked.

    Example:

        techne models list --json
    """
    _, repo = _opts(ctx).open()
    try:
        versions = repo.artifacts.versions()
    finally:
        repo.close()
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
            v.tag,
            v.created_at[:19],
            v.backend,
            str(v.metrics.get("train_size", "")),
            f"{f1:.3f}" if isinstance(f1, float) and f1 == f1 else "-",
            f"{ece:.3f}" if isinstance(ece, float) and ece == ece else "-",
        )
    out.print(table)


@models_app.command("show")
def models_show(
    ctx: typer.Context, ref: Annotated[str, typer.Argument(help="Version id or tag.")]
) -> None:
    """Settings, metrics and per-technique scores of one model version (JSON).

    Example:

        techne models show v3
    """
    _, repo = _opts(ctx).open()
    try:
        version = repo.artifacts.version(ref)
    finally:
        repo.close()
    out.print_json(json.dumps(version.__dict__))


@models_app.command("activate")
def models_activate(
    ctx: typer.Context, ref: Annotated[str, typer.Argument(help="Version id or tag.")]
) -> None:
    """Make an earlier (or later) model version the active one: a rollback.

    Example:

        techne models activate v2
    """
    ws, repo = _opts(ctx).open()
    try:
        from learning.registry import checksum_folder, model_folder

        version = repo.artifacts.version(ref)
        folder = model_folder(ws.models_dir, version)
        if not folder.exists() or checksum_folder(folder) != version.checksum:
            from learning.registry import ModelError

            raise ModelError(f"model {version.tag}: weights at {folder} are missing or changed")
        version = repo.artifacts.activate(version.id)
    finally:
        repo.close()
    out.print(f"Model {version.tag} is now active.", markup=False)


@app.command("predict")
def predict_cmd(
    ctx: typer.Context,
    source: Annotated[Path, typer.Argument(help="CSV, JSONL or Parquet file to score.")],
    output: Annotated[Path, typer.Argument(help="Parquet file to write.")],
    model: Annotated[
        str | None, typer.Option(help="Model version (default: the active one).")
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Messages per model batch.")] = 256,
    device: opt.Device = None,
    text: opt.Text = "text",
    speaker: opt.Speaker = None,
    conversation: opt.Conversation = None,
    id: opt.Id = None,  # noqa: A002
    labelable_speaker: opt.LabelableSpeaker = None,
    fmt: opt.InputFormat = None,
    as_json: opt.Json = False,
) -> None:
    """Score every message of a file of any size with a model: probabilities per technique
    and the top label, streamed in chunks. An interrupted run resumes where it stopped.

    Example:

        techne predict all_messages.csv scores.parquet --text body --conversation thread
        --speaker role --labelable-speaker therapist
    """
    from learning.predict import predict_file
    from learning.registry import load_predictor, model_folder

    ws, repo = _opts(ctx).open()
    try:
        version = repo.artifacts.version(model) if model else repo.artifacts.active()
        if version is None:
            from learning.registry import ModelError

            raise ModelError("no active model: run `techne retrain` first")
    finally:
        repo.close()
    predictor = load_predictor(
        model_folder(ws.models_dir, version), version.checksum, device or _settings(ws).device
    )
    columns = column_map(
        text=text,
        speaker=speaker,
        conversation=conversation,
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
            f"Scored {report.rows:,} messages with {version.tag} into {report.output} "
            f"({report.messages_per_s:,.0f} messages/s; {report.chunks_resumed} of "
            f"{report.chunks} chunks resumed).",
            markup=False,
        )


@app.command("simulate")
def simulate_cmd(
    ctx: typer.Context,
    source: Annotated[Path, typer.Argument(help="A labelled CSV, JSONL or Parquet file.")],
    strategies: Annotated[
        str, typer.Option(help="Comma-separated strategies.")
    ] = "breaking-ties,random",
    budgets: Annotated[
        str, typer.Option(help="Comma-separated label budgets.")
    ] = "100,200,400,800,1600",
    seeds: Annotated[str, typer.Option(help="Comma-separated seeds.")] = "0,1,2",
    step: Annotated[int, typer.Option(help="Labels added per simulated round.")] = 50,
    target: Annotated[float, typer.Option(help="Macro-F1 whose label cost is reported.")] = 0.70,
    codebook: Annotated[
        str | None, typer.Option(help="Codebook (default: the workspace's).")
    ] = None,
    context: Annotated[
        str | None,
        typer.Option(help="none | previous | around (default: techne.toml, then around)."),
    ] = None,
    text: opt.Text = "text",
    speaker: opt.Speaker = None,
    conversation: opt.Conversation = None,
    order: opt.Order = None,
    id: opt.Id = None,  # noqa: A002
    label: opt.Label = None,
    labelable_speaker: opt.LabelableSpeaker = None,
    fmt: opt.InputFormat = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the results as JSON here.")
    ] = None,
) -> None:
    """Simulate active learning with the file's labels as the oracle: learning curves per
    strategy (mean ± sd over seeds), area under the curve, and labels needed to reach
    --target macro-F1, on a conversation-grouped 80/20 split. The embed backend.

    Example:

        techne simulate AnnoMI-simple.csv --text utterance_text --speaker interlocutor
        --conversation transcript_id --order utterance_id --label main_therapist_behaviour
        --labelable-speaker therapist --codebook annomi
    """
    from learning.simulate import plot, simulate

    if not label:
        raise typer.BadParameter("--label is required: the labels are the simulation's oracle")
    settings = None
    spec = _load_book(codebook) if codebook else None
    try:
        ws, ws_repo = _opts(ctx).open()
    except TechneError:
        if spec is None:  # neither a workspace nor --codebook: say why
            raise
    else:
        try:
            settings = _settings(ws, context_mode=context)
            spec = spec or _view_spec(ws_repo.codebook())
        finally:
            ws_repo.close()
    assert spec is not None
    from store.io import import_file
    from store.repository import Repository

    with tempfile.TemporaryDirectory() as tmp:
        repo = Repository.open(f"sqlite:///{Path(tmp) / 'sim.db'}", create=True)
        try:
            repo.install_codebook(spec)
            repo.codebook_key = spec.key
            columns = column_map(
                text=text,
                speaker=speaker,
                conversation=conversation,
                order=order,
                id=id,
                label=label,
                annotator="oracle",
                labelable_speaker=labelable_speaker,
            )
            import_file(repo, source, columns, fmt=fmt, max_text_chars=10**7)
            data = _simulation_data(repo, settings, context)
        finally:
            repo.close()
    with ProgressBar(err, "simulating") as progress:
        result = simulate(
            data,
            [s.strip() for s in strategies.split(",")],
            _ints(budgets),
            _ints(seeds),
            target=target,
            step=step,
            progress=progress,
        )
    if json_out:
        json_out.write_text(json.dumps(result, indent=2))
    out.print(plot(result), markup=False, highlight=False)
    table = Table(
        title=f"macro-F1 by labels (mean ± sd over {len(result['seeds'])} seeds)",
        title_justify="left",
    )
    table.add_column("strategy")
    for b in result["budgets"]:
        table.add_column(str(b), justify="right")
    table.add_column("AUC", justify="right")
    table.add_column(f"labels to {target:.2f}", justify="right")
    for name, row in result["strategies"].items():
        reach = row["labels_to_target"]
        table.add_row(
            name,
            *(f"{m:.3f}±{s:.3f}" for m, s in zip(row["mean"], row["sd"], strict=True)),
            f"{row['auc']:.3f}",
            f"{reach:.0f}" if reach else "not reached",
        )
    out.print(table)
    out.print(f"All labels: macro-F1 {result['all_labels']['mean']:.3f}", markup=False)


def _ints(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise typer.BadParameter(f"expected comma-separated integers, got {text!r}") from None


def _load_book(name: str) -> Any:
    from tui.cli import _codebook_spec

    return _codebook_spec(name)


def _view_spec(view: Any) -> Any:
    from store import CodebookSpec, TechniqueSpec

    return CodebookSpec(
        key=view.key,
        name=view.name,
        version=view.version,
        description=view.description,
        multi_label=view.multi_label,
        techniques=tuple(
            TechniqueSpec(t.key, t.name, t.definition, t.examples, t.hotkey, t.target)
            for t in view.techniques
        ),
    )


def _simulation_data(repo: Repository, settings: Any, context: str | None) -> Any:
    import numpy as np

    from learning.encoders import Encoder
    from learning.features import embed_features
    from learning.pool import Pool
    from learning.settings import BEST_CONTEXT
    from learning.simulate import SimulationData

    mode = context or (settings.context_mode if settings else BEST_CONTEXT["embed"])
    pool = Pool.build(repo, repo.codebook(), eval_share=0.0)
    keep = np.flatnonzero(pool.labelled)
    encoder = Encoder(
        settings.encoder if settings else "all-MiniLM-L6-v2",
        settings.device if settings else "auto",
    )
    with ProgressBar(err, "encoding messages") as progress:
        x = embed_features(
            repo,
            encoder,
            pool.message_ids[keep],
            pool.previous_ids[keep],
            mode,
            progress,
            next_ids=pool.next_ids[keep],
        )
    return SimulationData(
        x=x,
        y=pool.y[keep],
        groups=np.asarray([pool.conversations[i] for i in keep]),
        labels=pool.labels,
        embeddings=x[:, : encoder.dim],
    )
